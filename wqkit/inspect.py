"""drgn helpers over the kernel's workqueues (the start of ``wqkit monitor``).

Run inside the lab guest (or on a live kernel as root) with the kernel's DWARF
vmlinux: ``python -m wqkit.inspect --vmlinux FILE`` prints the workqueue names
as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Iterator

import drgn
from drgn.helpers.linux.list import list_for_each_entry


def live_program(vmlinux: Path) -> drgn.Program:
    """A drgn program on the running kernel, with debug info from ``vmlinux``."""
    prog = drgn.Program()
    prog.set_kernel()
    prog.load_debug_info([str(vmlinux)])
    return prog


def for_each_workqueue(prog: drgn.Program) -> Iterator[drgn.Object]:
    """Iterate over every ``struct workqueue_struct *`` on the kernel's ``workqueues`` list."""
    yield from list_for_each_entry("struct workqueue_struct", prog["workqueues"].address_of_(), "list")


def workqueue_names(prog: drgn.Program) -> list[str]:
    """The name of every workqueue, in list order."""
    return [wq.name.string_().decode() for wq in for_each_workqueue(prog)]


def main() -> None:
    parser = argparse.ArgumentParser(description="List the kernel's workqueues with drgn.")
    parser.add_argument("--vmlinux", type=Path, required=True, help="the kernel's DWARF vmlinux")
    args = parser.parse_args()
    print(json.dumps({"workqueues": workqueue_names(live_program(args.vmlinux))}))


if __name__ == "__main__":
    main()
