"""Provisioning lab kernels: Debian's packages extracted into the cache, never installed.

Installing a kernel package would change the host's /boot (a new default boot
entry, an initramfs, udev pulled in). wqkit instead downloads the packages a
lab kernel needs with ``apt-get download`` (no root needed), extracts them
into ``CACHE/kernels/RELEASE/root`` and fixes the few absolute paths they
carry, so that:

* virtme-ng boots ``root/boot/vmlinuz-RELEASE`` and links
  ``root/lib/modules/RELEASE`` at /lib/modules/RELEASE in the guest;
* ``/lib/modules/RELEASE/build`` (what BCC and bpftrace look for in the guest)
  and the Kbuild directory used on the host both lead to
  ``root/usr/src/linux-headers-RELEASE``, whose Makefile includes the common
  headers of the same root;
* every path is relative, so the tree works wherever it lies (another
  user's cache can hard-link it);
* the DWARF vmlinux of the ``-dbg`` package is kept as ``CACHE/kernels/RELEASE/vmlinux``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from wqkit.lab.debian import download_packages, extract_from_package
from wqkit.errors import WqkitError
from wqkit.lab.kernel import STOCK_RELEASE, STOCK_SERIES, LabKernel, kernels_dir, release_key

Progress = Callable[[str], None]


def apt_show(package: str) -> str:
    """``apt-cache show PACKAGE`` (every version's stanza), or "" when apt does not know it."""
    proc = subprocess.run(["apt-cache", "show", package], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else ""


def candidate_releases(series: str) -> list[str]:
    """Releases of ``series`` that a version of ``linux-image-amd64`` depends on, oldest first."""
    found = set(re.findall(rf"^Depends:.*?linux-image-({re.escape(series)}\.[^\s,]+)",
                           apt_show("linux-image-amd64"), re.MULTILINE))
    return sorted((r for r in found if not r.endswith("-unsigned")), key=release_key)


def resolve_release(spec: str | None) -> str:
    """The Debian release to provision for ``spec``: ``stock``/``6.12``, a series, or a release.

    ``stock`` is the tested STOCK_RELEASE while the archive has it, else the
    6.12 release backports now offers. A series is its newest release known
    to apt (``6.1``: bookworm's own kernel).
    """
    spec = spec or "stock"
    if spec == "stock":
        if (kernels_dir() / STOCK_RELEASE / "root").is_dir() or apt_show(f"linux-image-{STOCK_RELEASE}"):
            return STOCK_RELEASE
        spec = STOCK_SERIES
    if re.fullmatch(r"\d+\.\d+", spec):
        releases = candidate_releases(spec)
        if not releases:
            raise WqkitError(f"apt knows no linux-image-amd64 of series {spec}: "
                             "run `make setup` (it adds bookworm-backports and updates apt's lists)")
        return releases[-1]
    return spec


def kernel_packages(release: str) -> list[str]:
    """The packages whose files make up a lab kernel: image, headers and what the headers include."""
    headers = f"linux-headers-{release}"
    stanza = apt_show(headers)
    if not stanza:
        raise WqkitError(f"apt knows no {headers}: is {release} a Debian kernel release? "
                         "(run `make setup` to update apt's lists)")
    depends = next(line for line in stanza.splitlines() if line.startswith("Depends:"))
    extra = re.findall(r"(linux-headers-[^\s,]+-common|linux-kbuild-[^\s,]+)", depends)
    return [f"linux-image-{release}", headers, *dict.fromkeys(extra)]


def provision_kernel(release: str, progress: Progress = print) -> LabKernel:
    """Extract the Debian packages of ``release`` into the cache (once) and return it."""
    kernel = LabKernel.stock(release)
    home = kernels_dir() / release
    root = home / "root"
    if not root.is_dir():
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=home) as tmp:
            packages = kernel_packages(release)
            progress(f"downloading {', '.join(packages)}")
            debs = download_packages(packages, Path(tmp))
            partial = Path(tmp) / "root"
            for deb in debs:
                progress(f"extracting {deb.name}")
                _run(["dpkg-deb", "-x", str(deb), str(partial)])
            _relocate(partial, release)
            partial.rename(root)
    provision_debug_vmlinux(kernel, progress)
    return kernel


def provision_debug_vmlinux(kernel: LabKernel, progress: Progress = print) -> Path:
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


def _relocate(partial: Path, release: str) -> None:
    """Make the packages' absolute /usr/src paths relative to the extracted root, and run depmod."""
    headers = partial / "usr" / "src" / f"linux-headers-{release}"
    commons = sorted((partial / "usr" / "src").glob("linux-headers-*-common"))
    if not headers.is_dir() or not commons:
        raise WqkitError(f"the packages of {release} hold no Kbuild headers")
    makefile = headers / "Makefile"
    # make -C resolves the directory, so $(CURDIR) is the real headers directory.
    makefile.write_text(makefile.read_text().replace("/usr/src/", "$(CURDIR)/../"))
    moddir = partial / "lib" / "modules" / release
    for link, target in (("build", headers.name), ("source", commons[0].name)):
        (moddir / link).unlink(missing_ok=True)
        (moddir / link).symlink_to(Path("../../../usr/src") / target)
    depmod = shutil.which("depmod", path="/usr/sbin:/sbin:/usr/bin:/bin")
    if depmod is None:
        raise WqkitError("depmod not found: install Debian's kmod (make setup)")
    _run([depmod, "-a", "-b", str(partial), release])


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        detail = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        raise WqkitError(f"`{' '.join(cmd[:2])} ...` failed: {detail}")
