"""Lab kernels: the kernels the lab VM boots, as values.

A :class:`LabKernel` names everything wqkit needs of one kernel: the image to
boot, the modules directory, the Kbuild directory to build modules against, the
DWARF ``vmlinux`` drgn needs, and whether it carries wqkit's measurement
patches. The stock kernel is Debian's 6.12 LTS from bookworm-backports; a
patched kernel built from a source tree is another value of the same type.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from wqkit.debian import extract_from_package
from wqkit.errors import WqkitError
from wqkit.paths import cache_dir

#: Debian's Linux 6.12 LTS from bookworm-backports that wqkit is tested on,
#: installed by scripts/setup.sh while the archive still has it.
STOCK_RELEASE = "6.12.95+deb12-amd64"
STOCK_SERIES = "6.12"


def stock_release() -> str:
    """The lab's default kernel release.

    ``$WQKIT_LAB_RELEASE`` if set; else STOCK_RELEASE if installed; else the
    newest installed 6.12 (what setup installs once backports has moved on).
    """
    if os.environ.get("WQKIT_LAB_RELEASE"):
        return os.environ["WQKIT_LAB_RELEASE"]
    if Path(f"/boot/vmlinuz-{STOCK_RELEASE}").exists():
        return STOCK_RELEASE
    return (installed_series(STOCK_SERIES) or [STOCK_RELEASE])[-1]


def installed_series(series: str) -> list[str]:
    """The Debian kernel releases of ``series`` (e.g. ``6.1``) under /boot, oldest first."""
    releases = (image.name.removeprefix("vmlinuz-") for image in Path("/boot").glob(f"vmlinuz-{series}.*"))
    return sorted(releases, key=lambda release: [int(n) for n in re.findall(r"\d+", release)])


@dataclass(frozen=True)
class LabKernel:
    """One bootable lab kernel and the files that go with it."""

    release: str
    image: Path
    build_dir: Path
    debug_vmlinux: Path
    #: /lib/modules/RELEASE for a packaged kernel; None for a built tree,
    #: whose modules virtme-ng takes from the tree itself.
    modules_dir: Path | None = None
    patched: bool = False
    #: For a built tree: the tree, which is what virtme-ng boots.
    tree: Path | None = None

    @classmethod
    def stock(cls, release: str | None = None) -> LabKernel:
        """A Debian packaged kernel installed on the host (image in /boot); by default the lab's."""
        release = release or stock_release()
        return cls(
            release=release,
            image=Path(f"/boot/vmlinuz-{release}"),
            build_dir=Path(f"/lib/modules/{release}/build"),
            modules_dir=Path(f"/lib/modules/{release}"),
            debug_vmlinux=cache_dir() / "kernels" / release / "vmlinux",
        )

    @classmethod
    def from_tree(cls, tree: Path, patched: bool = True) -> LabKernel:
        """A kernel built in a source tree (``make bzImage modules``)."""
        tree = tree.resolve()
        release_file = tree / "include" / "config" / "kernel.release"
        if not release_file.is_file():
            raise WqkitError(f"{tree} is not a built kernel tree (no {release_file.relative_to(tree)})")
        return cls(
            release=release_file.read_text().strip(),
            image=tree / "arch" / "x86" / "boot" / "bzImage",
            build_dir=tree,
            debug_vmlinux=tree / "vmlinux",
            patched=patched,
            tree=tree,
        )

    @property
    def boot_target(self) -> Path:
        """What ``vng --run`` is given: the tree for a built kernel, else the image."""
        return self.tree or self.image

    @property
    def label(self) -> str:
        """A short human name: release plus ``(patched)`` when it is."""
        return f"{self.release} (patched)" if self.patched else self.release

    def check_bootable(self) -> None:
        """Fail with a hint when the image or its modules are missing."""
        for path in (self.image, self.modules_dir):
            if path is not None and not path.exists():
                raise WqkitError(f"lab kernel {self.release}: {path} is missing; run `make setup`")

    def check_kbuild(self) -> None:
        """Fail with a hint when modules cannot be built against this kernel."""
        if not (self.build_dir / "Makefile").exists():
            raise WqkitError(f"lab kernel {self.release}: no Kbuild directory at {self.build_dir}; run `make setup`")

    def check_debug_info(self) -> None:
        """Fail with a hint when the DWARF vmlinux is not provisioned."""
        if not self.debug_vmlinux.is_file():
            raise WqkitError(
                f"lab kernel {self.release}: no debug vmlinux at {self.debug_vmlinux}; "
                "run `wqkit lab provision`")


def resolve_kernel(spec: str | None) -> LabKernel:
    """Turn a user's ``--kernel`` value into a LabKernel.

    Accepts nothing or ``stock`` (the default), a Debian kernel release
    installed under /boot, a series such as ``6.1`` (its newest release
    installed under /boot), or the path of a built kernel tree.
    """
    if spec in (None, "", "stock"):
        return LabKernel.stock()
    if "/" in spec or Path(spec).is_dir():
        return LabKernel.from_tree(Path(spec))
    if Path(f"/boot/vmlinuz-{spec}").exists():
        return LabKernel.stock(spec)
    series = installed_series(spec) if re.fullmatch(r"\d+\.\d+", spec) else []
    if series:
        return LabKernel.stock(series[-1])
    raise WqkitError(
        f"unknown lab kernel {spec!r}: give 'stock' ({stock_release()}), an installed release from /boot "
        "or its series (6.1), or a built kernel tree")


def provision_debug_vmlinux(kernel: LabKernel, progress=print) -> Path:
    """Download the ``-dbg`` package once and keep only its vmlinux.

    The package is about 1 GB; only ``usr/lib/debug/boot/vmlinux-RELEASE``
    (about 350 MB, a minute to extract) goes into the cache.
    """
    if kernel.debug_vmlinux.is_file():
        return kernel.debug_vmlinux
    if kernel.tree is not None:
        raise WqkitError(f"{kernel.debug_vmlinux} is missing: rebuild the tree {kernel.tree}")
    return extract_from_package(f"linux-image-{kernel.release}-dbg",
                                f"./usr/lib/debug/boot/vmlinux-{kernel.release}",
                                kernel.debug_vmlinux, progress)
