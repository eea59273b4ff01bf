"""The accelerator choice: explicit values, and a cached KVM probe for auto."""

import pytest

from wqkit.errors import WqkitError
from wqkit.lab import accel


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WQKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(accel, "kvm_device_usable", lambda: True)
    return tmp_path


def test_explicit_choice_is_honoured_without_probing():
    def probe():
        raise AssertionError("must not probe")
    assert accel.choose_accel("tcg", probe) == "tcg"
    assert accel.choose_accel("kvm", probe) == "kvm"


def test_unknown_accelerator_is_refused():
    with pytest.raises(WqkitError, match="unknown accelerator 'hvf'"):
        accel.choose_accel("hvf", lambda: True)


@pytest.mark.parametrize("kvm_works, expected", [(True, "kvm"), (False, "tcg")])
def test_auto_probes_once_and_caches_the_verdict(isolated_cache, kvm_works, expected):
    calls = []

    def probe():
        calls.append(1)
        return kvm_works
    assert accel.choose_accel("auto", probe) == expected
    assert accel.choose_accel("auto", probe) == expected
    assert len(calls) == 1
    assert (isolated_cache / "kvm-probe.json").exists()


def test_auto_without_a_usable_kvm_device_is_tcg(monkeypatch):
    monkeypatch.setattr(accel, "kvm_device_usable", lambda: False)
    assert accel.choose_accel("auto", lambda: True) == "tcg"
