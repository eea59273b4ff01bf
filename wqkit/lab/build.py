"""Building lab kernels from Debian's Linux source: vanilla, with linux_patch_exp/, or with sanitizers.

Every variant of a series comes from the same ``linux-source-SERIES`` tarball
(6.12 by default; 7.3, see :mod:`wqkit.lab.kernel_source`) and the same
configuration (``linux_patch_exp/lab.config`` on top of x86_64 tinyconfig: a
small VM kernel with what the lab needs), so that the patched kernel is
compared with a kernel that differs only by the patches and
``CONFIG_WQ_MEASURE``. The ``debug`` variant adds ``debug.config`` (KASAN,
UBSAN, lockdep, debug objects, kmemleak, watchdogs) and ``kcsan`` adds
``kcsan.config`` (KCSAN, which excludes KASAN): kernels wqkit's modules are
tested on. A build lives in ``CACHE/kernel-build/VARIANT-KEY/`` (``VARIANT-SERIES-KEY/``
for a series other than 6.12),
the key hashing the source, the patches, the configuration and the compiler:

    src/        the unpacked source, patched for the patched variant
    build/      the O= build tree: bzImage, vmlinux with DWARF, modules, Kbuild
    build.log   make's output
    complete    written last, with the build's timings: a cached build

Nothing cached is rebuilt; an interrupted build resumes where make stopped.
Objects go through ccache (``CACHE/ccache``, base dir shared by every
variant), so a one-line change to a patch recompiles only what it touches.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from wqkit.console import progress_stream
from wqkit.errors import WqkitError
from wqkit.lab.kernel_source import DEFAULT_SERIES, source_package, source_tarball
from wqkit.lab.kernel import LabKernel
from wqkit.paths import SOURCE_DIR, cache_dir

PATCH_DIR = SOURCE_DIR / "linux_patch_exp"
LAB_CONFIG = PATCH_DIR / "lab.config"
#: What the patched variant adds to the configuration.
PATCHED_CONFIG = "CONFIG_WQ_MEASURE=y\n"
#: Each variant and what it adds to lab.config: nothing, the patches' option, or a fragment file.
VARIANT_CONFIGS: dict[str, str | Path] = {
    "vanilla": "", "patched": PATCHED_CONFIG,
    "debug": PATCH_DIR / "debug.config", "kcsan": PATCH_DIR / "kcsan.config",
}
VARIANTS = tuple(VARIANT_CONFIGS)
MAKE_ENV = {
    # Reproducible version strings, so that ccache hits across builds.
    "KBUILD_BUILD_TIMESTAMP": "2026-01-01 00:00:00 UTC", "KBUILD_BUILD_USER": "wqkit", "KBUILD_BUILD_HOST": "lab",
}

Progress = Callable[[str], None]


def build_root() -> Path:
    return cache_dir() / "kernel-build"


def patch_dir(series: str = DEFAULT_SERIES) -> Path:
    """Where a series' patches are: linux_patch_exp/ for 6.12, ``linux_patch_exp/SERIES/`` for a port."""
    return PATCH_DIR if series == DEFAULT_SERIES else PATCH_DIR / series


def patch_series(series: str = DEFAULT_SERIES) -> list[Path]:
    """The patches for ``series``, in the order of its ``series`` file (quilt order)."""
    listing = patch_dir(series) / "series"
    if not listing.is_file():
        raise WqkitError(f"linux_patch_exp/ has no port to {series}: there is no patched {series} kernel")
    names = [line.strip() for line in listing.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    return [listing.parent / name for name in names]


def series_config(series: str) -> Path:
    """What a series changes in lab.config (options renamed since 6.12): ``lab-SERIES.config``, if any."""
    return PATCH_DIR / f"lab-{series}.config"


def config_fragment(variant: str, series: str = DEFAULT_SERIES) -> str:
    """The configuration a variant of a series adds to x86_64 tinyconfig (a later line overrides an earlier one)."""
    extra = VARIANT_CONFIGS[variant]
    renamed = series_config(series)
    return (LAB_CONFIG.read_text() + (renamed.read_text() if renamed.is_file() else "")
            + (extra.read_text() if isinstance(extra, Path) else extra))


def compiler_version() -> str:
    try:
        return subprocess.run(["gcc", "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    except (OSError, subprocess.CalledProcessError):
        raise WqkitError("gcc not found: run `make setup` (build-essential)") from None


@dataclass(frozen=True)
class KernelBuild:
    """One variant's build directory and what its key is made of."""

    variant: str
    home: Path
    series: str = DEFAULT_SERIES

    @classmethod
    def of(cls, variant: str, series: str = DEFAULT_SERIES) -> KernelBuild:
        if variant not in VARIANTS:
            raise WqkitError(f"unknown kernel variant {variant!r}: choose one of {', '.join(VARIANTS)}")
        source_package(series)
        tarball = source_tarball(progress=lambda m: None, series=series)
        digest = hashlib.sha256()
        digest.update(tarball.name.encode())
        digest.update(str(tarball.stat().st_size).encode())
        digest.update(config_fragment(variant, series).encode())
        digest.update(compiler_version().encode())
        if variant == "patched":
            for patch in patch_series(series):
                digest.update(patch.name.encode() + patch.read_bytes())
        # The default series keeps its directories' names of before 7.3 (their trees hold absolute paths).
        name = variant if series == DEFAULT_SERIES else f"{variant}-{series}"
        return cls(variant, build_root() / f"{name}-{digest.hexdigest()[:12]}", series)

    @property
    def src(self) -> Path:
        return self.home / "src"

    @property
    def out(self) -> Path:
        return self.home / "build"

    @property
    def complete(self) -> Path:
        return self.home / "complete"

    @property
    def log(self) -> Path:
        return self.home / "build.log"

    def kernel(self) -> LabKernel:
        """The built kernel as a LabKernel (its O= tree is what virtme-ng boots)."""
        return LabKernel.from_tree(self.out, variant=self.variant)


def built_kernel(variant: str, series: str = DEFAULT_SERIES) -> LabKernel:
    """The cached build of ``variant`` for the current patches and configuration, or a one-line error."""
    build = KernelBuild.of(variant, series)
    if not build.complete.is_file():
        flag = ("" if variant == "vanilla" else f" --{variant}") + \
            ("" if series == DEFAULT_SERIES else f" --series {series}")
        raise WqkitError(f"the {variant} lab kernel is not built for the current patches and configuration; "
                         f"run `wqkit lab kernel build{flag}` (about 10 min on 2 cores, cached afterwards)")
    return build.kernel()


def build_kernel(variant: str, jobs: int | None = None, config_only: bool = False,
                 progress: Progress = print, series: str = DEFAULT_SERIES) -> KernelBuild:
    """Unpack, patch, configure and build ``variant`` (once); return its build.

    One build of a variant at a time: a second caller (another terminal, or a test
    waiting for a build started in the background) waits for the first, then finds it
    cached."""
    source_tarball(progress, series)
    build = KernelBuild.of(variant, series)
    if build.complete.is_file():
        progress(f"{variant} kernel: cached in {build.home}")
        return build
    build.home.mkdir(parents=True, exist_ok=True)
    with open(build.home / "lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"{variant} kernel: another build of it is running (log: {build.log}); waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if build.complete.is_file():
            progress(f"{variant} kernel: built meanwhile, cached in {build.home}")
            return build
        return _build(build, variant, jobs, config_only, progress)


def _build(build: KernelBuild, variant: str, jobs: int | None, config_only: bool, progress: Progress) -> KernelBuild:
    """The build itself, under the variant's lock."""
    started = time.monotonic()
    unpack(build, progress)
    configure(build, progress)
    if config_only:
        progress(f"{variant} kernel: configured in {build.out / '.config'}")
        return build
    objects = compile_kernel(build, jobs or (os.cpu_count() or 1) + 1, progress)
    size = sum(f.stat().st_size for f in build.out.rglob("*") if f.is_file())
    build.complete.write_text(json.dumps({
        "variant": variant, "series": build.series, "seconds": round(time.monotonic() - started, 1), "objects": objects,
        "release": build.kernel().release, "build_tree_bytes": size,
        "patches": [p.name for p in patch_series(build.series)] if variant == "patched" else []}, indent=1) + "\n")
    progress(f"{variant} kernel {build.kernel().release} built in {time.monotonic() - started:.0f} s "
             f"({objects} objects compiled, {size / 2**20:.0f} MiB cached)")
    return build


def unpack(build: KernelBuild, progress: Progress) -> None:
    """The source tree, patched for the patched variant (kept across an interrupted build)."""
    applied = build.home / "source-ready"
    if applied.is_file():
        return
    shutil.rmtree(build.src, ignore_errors=True)
    partial = build.home / "src.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    tarball = source_tarball(progress, build.series)
    progress(f"unpacking {tarball.name}")
    _run(["tar", "-xJf", str(tarball), "-C", str(partial), "--strip-components=1"], "unpacking the source")
    if build.variant == "patched":
        for patch in patch_series(build.series):
            apply_patch(partial, patch)
            progress(f"applied {patch.name}")
    partial.rename(build.src)
    applied.write_text(f"{source_package(build.series)} {kernel_version(build.src)}\n")


def kernel_version(src: Path) -> str:
    """VERSION.PATCHLEVEL.SUBLEVEL of a source tree's Makefile."""
    head = (src / "Makefile").read_text()[:400]
    parts = [re.search(rf"^{name} = (\d+)", head, re.MULTILINE) for name in ("VERSION", "PATCHLEVEL", "SUBLEVEL")]
    return ".".join(p.group(1) for p in parts if p)


def apply_patch(src: Path, patch: Path) -> None:
    """``patch -p1`` one patch; a failure names the patch and its first failing hunk."""
    proc = subprocess.run(["patch", "-p1", "--forward", "--batch", "-i", str(patch)], cwd=src,
                          capture_output=True, text=True)
    if proc.returncode:
        lines = (proc.stdout + proc.stderr).splitlines()
        failing = next((ln for ln in lines if any(w in ln for w in ("FAILED", "malformed", "can't find",
                                                                     "previously applied"))),
                       lines[-1] if lines else "no output")
        raise WqkitError(f"{patch.name} does not apply: {failing.strip()}")


def configure(build: KernelBuild, progress: Progress) -> None:
    """tinyconfig + the variant's fragment, then olddefconfig; every fragment line must hold.

    ``fragment.config`` beside the build marks a configuration done and checked: it is written
    last, so a build interrupted (or refused) while configuring configures again next time.
    """
    config = build.out / ".config"
    fragment = build.home / "fragment.config"
    wanted = config_fragment(build.variant, build.series)
    if config.is_file() and fragment.is_file() and fragment.read_text() == wanted:
        return
    fragment.unlink(missing_ok=True)
    extra = VARIANT_CONFIGS[build.variant]
    renamed = series_config(build.series)
    files = " + ".join([LAB_CONFIG.name, *([renamed.name] if renamed.is_file() else []),
                        *([extra.name] if isinstance(extra, Path) else [])])
    progress(f"configuring the {build.variant} kernel (x86_64 tinyconfig + {files})")
    build.out.mkdir(exist_ok=True)
    merged = build.home / "fragment.config.merging"
    merged.write_text(wanted)
    make = ["make", "-s", "-C", str(build.src), f"O={build.out}", "ARCH=x86_64"]
    _run([*make, "tinyconfig"], "make tinyconfig")
    _run([str(build.src / "scripts" / "kconfig" / "merge_config.sh"), "-m", "-O", str(build.out),
          str(config), str(merged)], "merging the configuration")
    _run([*make, "olddefconfig"], "make olddefconfig")
    missing = unmet_options(config.read_text(), wanted)
    if missing:
        raise WqkitError(f"the {build.variant} kernel configuration lost {', '.join(missing)} "
                         f"(a dependency is missing from linux_patch_exp/: {files})")
    merged.rename(fragment)


def unmet_options(config: str, fragment: str) -> list[str]:
    """The fragment's ``CONFIG_X=v`` / ``# CONFIG_X is not set`` lines that the config does not hold
    (of an option set twice, the last line: merge_config.sh's rule)."""
    have = {}
    for line in config.splitlines():
        if match := re.fullmatch(r"(CONFIG_\w+)=(.*)", line):
            have[match.group(1)] = match.group(2)
        elif match := re.fullmatch(r"# (CONFIG_\w+) is not set", line):
            have[match.group(1)] = "n"
    wanted = {}
    for line in fragment.splitlines():
        if match := re.fullmatch(r"(CONFIG_\w+)=(.*)", line.strip()):
            wanted[match.group(1)] = match.group(2)
        elif match := re.fullmatch(r"# (CONFIG_\w+) is not set", line.strip()):
            wanted[match.group(1)] = "n"
    return [f"{name}={value}" for name, value in wanted.items() if have.get(name, "n") != value]


def compile_kernel(build: KernelBuild, jobs: int, progress: Progress) -> int:
    """``make bzImage modules`` with ccache and a progress bar; return the number of objects compiled."""
    if shutil.which("ccache") is None:
        raise WqkitError("ccache not found: run `make setup`")
    estimate = _previous_objects(build.variant)
    env = dict(os.environ, **MAKE_ENV, CCACHE_DIR=str(cache_dir() / "ccache"),
               CCACHE_BASEDIR=str(build_root()), CCACHE_NOHASHDIR="1")
    cmd = ["make", "-C", str(build.src), f"O={build.out}", "ARCH=x86_64", f"-j{jobs}", "CC=ccache gcc",
           "bzImage", "modules"]
    progress(f"building the {build.variant} kernel with {jobs} jobs (log: {build.log})")
    compiled = 0
    with open(build.log, "a") as log, tqdm(total=estimate, unit="obj", desc=f"{build.variant} kernel",
                                           file=progress_stream(), mininterval=2.0) as bar:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                log.write(line)
                if line.startswith("  CC"):
                    compiled += 1
                    bar.update(1)
            proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if proc.returncode:
        errors = [ln for ln in build.log.read_text().splitlines() if "error:" in ln or "Error " in ln]
        raise WqkitError(f"the {build.variant} kernel build failed: {(errors or ['see ' + str(build.log)])[0]}")
    return compiled


def _previous_objects(variant: str) -> int | None:
    """How many objects the last complete build of any variant compiled (for the bar's total)."""
    counts = [json.loads(p.read_text()).get("objects") for p in build_root().glob("*/complete")]
    return max((c for c in counts if c), default=None)


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        detail = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        raise WqkitError(f"{what} failed: {detail}")
