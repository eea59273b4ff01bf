"""Which lab kernel a user's ``--kernel`` value names: stock, provisioned, built or a tree."""

from __future__ import annotations

import re
from pathlib import Path

from wqkit.errors import WqkitError
from wqkit.lab.build import VARIANTS, built_kernel
from wqkit.lab.kernel import LabKernel, provisioned_releases, stock_release
from wqkit.lab.kernel_source import built_only


def resolve_kernel(spec: str | None) -> LabKernel:
    """Turn a user's ``--kernel`` value into a LabKernel.

    Accepts nothing or ``stock`` (the default), a provisioned Debian kernel
    release, a series such as ``6.1`` (its newest provisioned release),
    ``patched``, ``vanilla``, ``debug`` or ``kcsan`` (wqkit's builds of Debian's
    6.12 source: with and without linux_patch_exp/, with sanitizers), ``7.3``
    (wqkit's vanilla build of Debian's 7.3 source: its packaged kernel cannot
    take modules on this host), a variant of it such as ``patched-7.3``, or
    the path of a built kernel tree.
    """
    if spec in (None, "", "stock"):
        return LabKernel.stock()
    if spec in VARIANTS:
        return built_kernel(spec)
    if built_only(spec):
        return built_kernel("vanilla", spec)
    variant, _, built_series = spec.rpartition("-")
    if variant in VARIANTS and built_only(built_series):
        return built_kernel(variant, built_series)
    if "/" in spec or Path(spec).is_dir():
        return LabKernel.from_tree(Path(spec))
    if spec in provisioned_releases():
        return LabKernel.stock(spec)
    series = provisioned_releases(spec) if re.fullmatch(r"\d+\.\d+", spec) else []
    if series:
        return LabKernel.stock(series[-1])
    have = ", ".join(provisioned_releases()) or "none yet"
    raise WqkitError(
        f"unknown lab kernel {spec!r}: give 'stock' ({stock_release()}), a provisioned release "
        f"({have}) or its series (6.1), {', '.join(map(repr, VARIANTS))}, '7.3' (or 'patched-7.3'), "
        f"or a built kernel tree; "
        f"`wqkit lab provision --kernel {spec}` fetches a Debian kernel")
