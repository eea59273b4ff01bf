"""The kernel's own benchmark modules as runs: built unchanged from Debian's kernel source.

A module such as lib/test_workqueue.c (Linux 7.1, the benchmark of the cache_shard
affinity scope) is declared in ``wqkit/experiments/upstream/NAME.toml``: its
parameters, the source package series and file it comes from, the line it prints
per result and the errno its init returns once done. A run builds it for the
target's kernel (cached; older kernels get the few helpers it needs from
``upstream_compat.h``), loads it once, parses its lines into the declared table
and fails when a line is missing. A value its kernel cannot have measured is
kept but marked: Linux before 7.1 matches scope names by prefix, so its
"cache_shard" line is the cache scope measured again (``measured_as``).
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from wqkit.errors import WqkitError
from wqkit.experiments import kmod
from wqkit.lab.kernel_source import source_package, source_tarball
from wqkit.lab.splats import module_splats
from wqkit.paths import cache_dir
from wqkit.runs.kinds import RunKind
from wqkit.runs.lifecycle import RUN_TIMEOUT_S, recorded_run
from wqkit.runs.spec import SHARED_PARAMS, read_param, release_tuple
from wqkit.target import Target

COMPAT_HEADER = Path(__file__).with_name("upstream_compat.h")


def source(kind: RunKind, progress: Callable[[str], None] = print) -> bytes:
    """The module's C file, from Debian's linux-source of its declared series (cached)."""
    series, member = str(kind.upstream["series"]), str(kind.upstream["source"])
    cached = cache_dir() / "upstream" / series / member
    if not cached.exists():
        tarball = source_tarball(progress, series)
        progress(f"extracting {member} from {tarball.name}")
        with tarfile.open(tarball) as tar:
            entry = tar.extractfile(f"{source_package(series)}/{member}")
            if entry is None:
                raise WqkitError(f"{tarball}: no {member}")
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.with_suffix(".part").write_bytes(entry.read())
            cached.with_suffix(".part").rename(cached)
    return cached.read_bytes()


def build(target: Target, kind: RunKind, progress: Callable[[str], None] = print) -> Path:
    """``NAME.ko`` built for the target's kernel, in ``CACHE/modules/upstream-NAME-RELEASE-DIGEST``."""
    code, compat = source(kind, progress), COMPAT_HEADER.read_bytes()
    kbuild = target.kbuild_dir
    digest = hashlib.sha256(str(kbuild).encode() + code + compat).hexdigest()[:16]
    built = cache_dir() / "modules" / f"upstream-{kind.name}-{target.release}-{digest}"
    if not (built / kmod.BUILT_MARK).exists():
        progress(f"building {kind.name} ({kind.upstream['source']} of Linux {kind.upstream['series']}) "
                 f"for {target.release}")
        kbuild_file = f"obj-m := {kind.name}.o\nccflags-y := -include $(src)/{COMPAT_HEADER.name}\n"
        kmod.build_once(built, {f"{kind.name}.c": code, COMPAT_HEADER.name: compat, "Kbuild": kbuild_file.encode()},
                        lambda work: ["make", "-C", str(kbuild), f"M={work}", "modules"],
                        f"{kind.name}: build failed for {target.release}")
    return built / f"{kind.name}.ko"


def parse_lines(kind: RunKind, log: list[str], release: str) -> pd.DataFrame:
    """One row per result line of the module in kernel ``log``, numbers as integers; ``measured_as``
    is what the kernel really measured (a scope older kernels do not know is another one)."""
    pattern = re.compile(str(kind.upstream["line"]))
    rows = [m.groupdict() for m in map(pattern.search, log) if m]
    frame = pd.DataFrame(rows, columns=list(pattern.groupindex))
    for column in frame.columns.drop("scope", errors="ignore"):
        frame[column] = frame[column].astype("int64")
    if "scope" in frame:
        frame["measured_as"] = [measured_as(scope, release) for scope in frame["scope"]]
    return frame


def measured_as(scope: str, release: str) -> str:
    """The scope a kernel of ``release`` applies when told ``scope``: itself where the kernel has it
    (affinity_scope's ``since``); else the first older scope it prefixes, as Linux before 7.1
    matched names (``strncasecmp`` over the known name's length), or ``""`` for none."""
    param = read_param({"shared": "affinity_scope"}, SHARED_PARAMS)
    have = release_tuple(release)
    known = [c for c in param.choices if (needed := param.needs_release(c)) is None or have >= needed[0]]
    if scope in known:
        return scope
    return next((c for c in known if scope.lower().startswith(c)), "")


def check_release(kind: RunKind, release: str) -> None:
    """A one-line error, before anything boots, for a kernel older than the module's ``since``."""
    since = str(kind.upstream.get("since", "0.0"))
    if release_tuple(release) < release_tuple(since):
        raise WqkitError(f"{kind.name} needs Linux {since} or later (affinity scopes); the target's kernel is "
                         f"{release}")


def run(kind: RunKind, own: Mapping[str, object], load: Mapping[str, object], *, target: Target | None = None,
        target_name: str = "lab", out: Path = Path("runs"), progress: Callable[[str], None] = print,
        timeout: float = RUN_TIMEOUT_S, annotations: Mapping[str, object] | None = None, graph: object = None,
        **lab_options) -> Path:
    """The registry's runner of an upstream module: build, load once (its init runs the benchmark),
    parse its lines; the run directory."""
    params = {p.name: own.get(p.name, p.default) for p in kind.params}
    meta: dict = {"kind": kind.name, "experiment": kind.name, "requested_parameters": params,
                  "upstream": {"series": kind.upstream["series"], "source": kind.upstream["source"]},
                  **(annotations or {})}
    with recorded_run(Path(out), kind.name, meta, target=target, target_name=target_name, progress=progress,
                      before_boot=lambda opened: check_release(kind, opened.release), **lab_options) as recorded:
        ko = build(recorded.target, kind, recorded.progress)
        meta["upstream"]["vermagic"] = kmod.check_built_for(ko, recorded.target)
        mark = kmod.log_mark(recorded.target)
        recorded.progress(f"loading {kind.name} {' '.join(f'{k}={v}' for k, v in params.items())}: its init "
                          "runs the benchmark")
        error = recorded.target.load_module(str(ko), [f"{k}={v}" for k, v in params.items()], timeout=timeout)
        if kmod.is_loaded(recorded.target, kind.name):
            recorded.target.unload_module(kind.name)
        log = kmod.log_since(recorded.target, mark)
        (recorded.path / "dmesg.txt").write_text("\n".join(log) + "\n")
        rows = parse_lines(kind, log, recorded.target.release)
        rows.to_parquet(recorded.path / kind.table, index=False)
        expected = list(kind.upstream.get("scopes", ()))
        meta["rows"] = {"expected": len(expected), "parsed": len(rows),
                        "measured_as_another": rows.loc[rows["scope"] != rows["measured_as"], "scope"].tolist()}
        splats, _ = module_splats(log, kind.name)
        if splats:
            raise WqkitError(f"{kind.name}: the kernel reports {splats[0].kind}: {splats[0].line}")
        if error and error != kind.upstream.get("done_errno"):
            raise WqkitError(f"{kind.name}: loading failed: {error}; kernel log: {(log or ['(none)'])[-1].strip()}")
        missing = [s for s in expected if s not in set(rows["scope"])]
        if missing:
            raise WqkitError(f"{kind.name}: no result line for {', '.join(missing)} (see dmesg.txt)")
    return recorded.final
