"""Lab kernels: the kernels the lab VM boots, as values.

A :class:`LabKernel` names everything wqkit needs of one kernel: the image to
boot, the modules directory, the Kbuild directory to build modules against, the
DWARF ``vmlinux`` drgn needs, and whether it carries wqkit's measurement
patches. Debian's packaged kernels are *provisioned*, never installed: their
packages are extracted into ``CACHE/kernels/RELEASE/root`` (see
:mod:`wqkit.lab.provision`), so the host's /boot and package list stay as they
were. A kernel built from a source tree is another value of the same type.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from wqkit.errors import WqkitError
from wqkit.paths import cache_dir

#: Debian's Linux 6.12 LTS from bookworm-backports that wqkit is tested on,
#: provisioned while the archive still has it.
STOCK_RELEASE = "6.12.95+deb12-amd64"
STOCK_SERIES = "6.12"


def kernels_dir() -> Path:
    """Where provisioned kernels live: ``CACHE/kernels/RELEASE/``."""
    return cache_dir() / "kernels"


def release_key(release: str) -> list[int]:
    """Sort key of a release string by its numbers (6.1.0-9 < 6.1.0-41)."""
    return [int(n) for n in re.findall(r"\d+", release)]


def provisioned_releases(series: str | None = None) -> list[str]:
    """The provisioned Debian kernel releases (of ``series``, e.g. ``6.1``), oldest first."""
    root = kernels_dir()
    found = [d.name for d in root.iterdir() if (d / "root" / "boot" / f"vmlinuz-{d.name}").is_file()] \
        if root.is_dir() else []
    if series is not None:
        found = [r for r in found if r.startswith(series + ".")]
    return sorted(found, key=release_key)


def stock_release() -> str:
    """The lab's default kernel release.

    ``$WQKIT_LAB_RELEASE`` if set; else STOCK_RELEASE if provisioned; else the
    newest provisioned 6.12 (what provisioning picks once backports has moved
    on); else STOCK_RELEASE, which then asks to be provisioned.
    """
    if os.environ.get("WQKIT_LAB_RELEASE"):
        return os.environ["WQKIT_LAB_RELEASE"]
    provisioned = provisioned_releases(STOCK_SERIES)
    if STOCK_RELEASE in provisioned:
        return STOCK_RELEASE
    return (provisioned or [STOCK_RELEASE])[-1]


#: wqkit's kernel builds that carry sanitizers: for testing modules, not for measuring.
SANITIZER_VARIANTS = ("debug", "kcsan")


@dataclass(frozen=True)
class LabKernel:
    """One bootable lab kernel and the files that go with it."""

    release: str
    image: Path
    build_dir: Path
    debug_vmlinux: Path
    #: The modules directory of a packaged kernel (in the cache); None for a
    #: built tree, whose modules virtme-ng takes from the tree itself.
    modules_dir: Path | None = None
    #: For a kernel wqkit built: its variant (vanilla, patched, debug, kcsan); None for Debian's.
    variant: str | None = None
    #: For a built tree: the tree, which is what virtme-ng boots.
    tree: Path | None = None

    @classmethod
    def stock(cls, release: str | None = None) -> LabKernel:
        """A provisioned Debian kernel (by default the lab's), extracted in the cache."""
        release = release or stock_release()
        home = kernels_dir() / release
        return cls(
            release=release,
            image=home / "root" / "boot" / f"vmlinuz-{release}",
            build_dir=home / "root" / "usr" / "src" / f"linux-headers-{release}",
            modules_dir=home / "root" / "lib" / "modules" / release,
            debug_vmlinux=home / "vmlinux",
        )

    @classmethod
    def from_tree(cls, tree: Path, variant: str = "patched") -> LabKernel:
        """A kernel built in a source tree (``make bzImage modules``); a tree of unknown origin
        counts as patched (a researcher's own build, with measurement points)."""
        tree = tree.resolve()
        release_file = tree / "include" / "config" / "kernel.release"
        if not release_file.is_file():
            raise WqkitError(f"{tree} is not a built kernel tree (no {release_file.relative_to(tree)})")
        return cls(
            release=release_file.read_text().strip(),
            image=tree / "arch" / "x86" / "boot" / "bzImage",
            build_dir=tree,
            debug_vmlinux=tree / "vmlinux",
            variant=variant,
            tree=tree,
        )

    @property
    def boot_target(self) -> Path:
        """What virtme-run boots (``--kimg``): the tree for a built kernel, else the image.

        virtme-ng finds a packaged image's modules by walking up from the
        image to the directory holding ``lib/modules`` (our extracted root)
        and links them at /lib/modules/RELEASE in the guest.
        """
        return self.tree or self.image

    @property
    def patched(self) -> bool:
        """Built with linux_patch_exp/ (its measurement points)."""
        return self.variant == "patched"

    @property
    def sanitized(self) -> bool:
        """Built with sanitizers (debug, kcsan): for testing modules; its timings are not the kernel's."""
        return self.variant in SANITIZER_VARIANTS

    @property
    def slowdown(self) -> int:
        """How many times longer than the stock kernel's its paths may take: a bound on a time
        measured on it is this much wider (3 with sanitizers: tracers attached 116-140 s on the
        debug kernel under TCG, against 40-60 s; work items waited 74 µs, against 7-11)."""
        return 3 if self.sanitized else 1

    @property
    def label(self) -> str:
        """A short human name: release plus ``(patched)`` when it is (a sanitized kernel's release says so)."""
        return f"{self.release} (patched)" if self.patched else self.release

    def link_tree_sources(self) -> None:
        """For a tree built with O=: give the guest's /lib/modules/RELEASE a ``source`` link.

        virtme-ng links /lib/modules/RELEASE in the guest to the tree's
        ``.virtme_mods/lib/modules/0.0.0``, whose ``build`` is the O= tree; the
        headers BCC and bpftrace include are in the source tree beside it.
        """
        if self.tree is None or not (self.tree / "source").exists():
            return
        moddir = self.tree / ".virtme_mods" / "lib" / "modules" / "0.0.0"
        moddir.mkdir(parents=True, exist_ok=True)
        link = moddir / "source"
        if not link.is_symlink():
            link.symlink_to(Path("../../../../source"))

    def check_bootable(self) -> None:
        """Fail with a hint when the image or its modules are missing."""
        for path in (self.image, self.modules_dir):
            if path is None or path.exists():
                continue
            if self.tree is not None:
                raise WqkitError(f"lab kernel {self.release}: {path} is missing; build the tree {self.tree}")
            raise WqkitError(f"lab kernel {self.release} is not provisioned ({path} is missing); "
                             f"run `wqkit lab provision --kernel {self.release}` or `make setup`")

    def check_kbuild(self) -> None:
        """Fail with a hint when modules cannot be built against this kernel."""
        if not (self.build_dir / "Makefile").exists():
            raise WqkitError(f"lab kernel {self.release}: no Kbuild directory at {self.build_dir}; "
                             "run `make setup`")

    def check_debug_info(self) -> None:
        """Fail with a hint when the DWARF vmlinux is not provisioned."""
        if not self.debug_vmlinux.is_file():
            raise WqkitError(
                f"lab kernel {self.release}: no debug vmlinux at {self.debug_vmlinux}; "
                "run `wqkit lab provision`")
