"""Module parameters are validated in Python before anything is loaded."""

import pytest

from wqkit import kmod
from wqkit.errors import WqkitError


def test_valid_parameters_become_insmod_arguments():
    assert kmod.module_spec("wq_smoke").insmod_args({"nr": 5000}) == ["nr=5000"]
    assert kmod.module_spec("wq_smoke").insmod_args({"nr": "0x10"}) == ["nr=16"]


@pytest.mark.parametrize("value, message", [
    (0, r"nr=0 is out of range \(1\.\.100000\)"),
    (-1, r"nr=-1 is out of range"),
    (100_001, r"nr=100001 is out of range"),
    ("many", r"nr='many' is not an integer"),
    (True, r"nr=True is not an integer"),
    (1.5, r"nr=1.5 is not an integer"),
])
def test_invalid_values_are_refused(value, message):
    with pytest.raises(WqkitError, match=message):
        kmod.module_spec("wq_smoke").insmod_args({"nr": value})


def test_unknown_parameter_names_the_known_ones():
    with pytest.raises(WqkitError, match=r"unknown parameter 'delay' \(known: nr\)"):
        kmod.module_spec("wq_smoke").insmod_args({"delay": 1})


def test_unknown_module_names_the_known_ones():
    with pytest.raises(WqkitError, match=r"unknown module 'nope' \(known: wq_smoke"):
        kmod.module_spec("nope")


def test_every_module_in_the_registry_is_built_by_kbuild():
    from wqkit.paths import MODULES_DIR
    makefile_modules = next(line for line in (MODULES_DIR / "Makefile").read_text().splitlines()
                            if line.startswith("MODULES :=")).split(":=")[1].split()
    kbuild_modules = next(line for line in (MODULES_DIR / "Kbuild").read_text().splitlines()
                          if line.startswith("WQKIT_MODULES ?=")).split("?=")[1].split()
    assert sorted(kmod.MODULES) == sorted(makefile_modules) == sorted(kbuild_modules)
