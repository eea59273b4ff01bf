"""Kernel log reports that mean something went wrong in the kernel ("splats"), found in its text.

A production kernel reports a panic, an oops, a BUG or a WARN; a debug kernel
(``--kernel debug``, ``--kernel kcsan``) adds what its sanitizers and checkers
find: KASAN and KCSAN reports, UBSAN, lockdep's "possible ... deadlock" and
friends (printed as ``WARNING:`` lines), debug objects (``ODEBUG:``),
kmemleak's unreferenced objects, and the watchdogs (soft lockups and workqueue
lockups are ``BUG:`` lines; hung tasks and RCU stalls have their own words).
One list serves the console of a VM that died (the first, most serious line)
and a module's run (every report, with the lines that follow it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: (kind, what its first line contains), most serious first: a line is of the first kind it matches.
SPLAT_MARKERS = (
    ("panic", "Kernel panic"),
    ("oops", "Oops"),
    ("kasan", "BUG: KASAN:"),
    ("kcsan", "BUG: KCSAN:"),
    ("bug", "BUG:"),                    # also sleeping in atomic, soft and workqueue lockups
    ("gpf", "general protection fault"),
    ("ubsan", "UBSAN:"),
    ("warning", "WARNING:"),            # WARN() and lockdep's reports
    ("odebug", "ODEBUG:"),
    ("kmemleak", "unreferenced object 0x"),
    ("hung task", "blocked for more than"),
    ("rcu stall", "detected stalls"),
)
#: Each marker as a pattern that starts at a word's start ("ODEBUG:" is no "BUG:").
_PATTERNS = tuple((kind, re.compile(r"(?<!\w)" + re.escape(marker))) for kind, marker in SPLAT_MARKERS)
#: Lines kept after a report's first line (its call trace), at most.
REPORT_LINES = 40
#: dmesg's and the console's timestamp prefix.
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")


@dataclass(frozen=True)
class Splat:
    """One report: its kind, its first line and the lines that follow it."""

    kind: str
    line: str
    report: tuple[str, ...]

    def __str__(self) -> str:
        return "\n".join(self.report)

    def involves(self, module: str) -> bool:
        """Whether one of the report's code locations is in ``module`` (its ``[module]`` tag;
        the ``Workqueue:`` line only names the work that was running)."""
        return any(f"[{module}]" in line for line in self.report[1:] if not line.startswith("Workqueue:"))


def splat_kind(line: str) -> str | None:
    """The kind of report ``line`` starts, or None for an ordinary line."""
    return next((kind for kind, pattern in _PATTERNS if pattern.search(line)), None)


def find_splats(lines: list[str]) -> list[Splat]:
    """Every report in kernel log ``lines``, in order. A report runs to the next report's first
    line or REPORT_LINES lines. A line that matches a marker within a report's first five lines
    belongs to it (a KASAN report's ``BUG:`` after its ``====`` rule, lockdep's ``WARNING:``)."""
    texts = [_TIMESTAMP.sub("", raw).rstrip() for raw in lines]
    splats: list[Splat] = []
    start = None
    for index in range(len(texts) + 1):
        kind = splat_kind(texts[index]) if index < len(texts) else None
        if start is not None and (index == len(texts) or index - start > REPORT_LINES
                                  or (kind is not None and index - start >= 5)):
            block = texts[start:index]
            splats.append(Splat(splat_kind(block[0]) or "bug", block[0].strip(), tuple(block)))
            start = None
        if kind is not None and start is None:
            start = index
    return splats


def module_splats(lines: list[str], module: str) -> tuple[list[Splat], list[Splat]]:
    """The reports in kernel log ``lines`` that count against ``module``, and the KCSAN races
    between other kernel code only (a sanitized kernel has its own: virtio's rings, or 6.12's
    unlocked ``pwq->stats[PWQ_STAT_COMPLETED]++`` between two workers of one unbound pool), kept
    apart so that they are recorded without failing the module."""
    found = find_splats(lines)
    elsewhere = [s for s in found if s.kind == "kcsan" and not s.involves(module)]
    return [s for s in found if s not in elsewhere], elsewhere


def first_splat_line(console: str) -> str | None:
    """The most serious report's first line in a console text, or None."""
    for _, pattern in _PATTERNS:
        for line in console.splitlines():
            if pattern.search(line):
                return line.strip()
    return None
