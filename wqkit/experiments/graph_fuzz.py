"""Fuzzing kserver's graph parser: generated texts fed to the module, each outcome checked.

The module parses a task graph from a debugfs write, in the kernel: an input
surface. :func:`fuzz_inputs` generates texts from a seed: graphs at the
limits (most tasks, most edges, deepest chain, widest fan, the text size, the
mem total and the samples at their bound and one past it), small random
graphs, and mutations of them (truncated, bytes flipped or inserted, NUL,
non-ASCII, huge or signed numbers, duplicated lines, cycles, extra words),
some delivered in several writes. :func:`fuzz_kserver` loads the module once,
feeds every text to its ``trial`` file on the target (fuzz_guest.py) and
checks that:

- the module accepts a text exactly when :meth:`TaskGraph.check_text` does
  (Python and C agree on every input), and runs every text it accepts once,
  each task after its predecessors (the module checks the order, EIO if not);
- what the module parsed of every text it accepts (its ``parsed`` file: tasks,
  their kinds, costs and successors, the samples a run makes) is what Python
  parsed, so that a parser that drops or misroutes an edge is caught, not only
  one that refuses the wrong texts;
- a refused text fails with EINVAL and one kernel log line, an accepted one
  prints nothing;
- nothing else happens: no splat, no leak (kmod.loaded's checks at unload).
"""

from __future__ import annotations

import random
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from wqkit.errors import WqkitError
from wqkit.experiments import graph as g
from wqkit.experiments import kmod
from wqkit.experiments.runner import GRAPH_DIR
from wqkit.lab.agent_bundle import GUEST_PYTHON
from wqkit.target import Target

FEEDER = Path(__file__).with_name("fuzz_guest.py")
#: Numbers that sit on a boundary of a C type or of a limit, as words.
EDGY_NUMBERS = ("0", "-1", "+5", "007", "0x10", "1e3", "1_000", "\u0663".encode().decode("latin-1"),
                str(g.MAX_TASKS - 1), str(g.MAX_TASKS), str(2**31), str(2**32 - 1), str(2**32), str(2**32 + 1),
                str(2**63), str(2**64 - 1), str(2**64), str(2**64 + 1), "9" * 40, "")
#: Bytes worth inserting: separators, the comment sign, NUL, Latin-1 and UTF-8 blanks.
EDGY_BYTES = (b"\0", b"\n", b"\t", b"\r", b"\x0b", b"\x0c", b" ", b"#", b"-", b"+", b"9", b"\xa0", b"\x85",
              b"\xc2\xa0", b"\xe2\x80\xa8", b"\xff")


@dataclass(frozen=True)
class FuzzInput:
    """One text for the module, what it is meant to exercise, and in how many writes it goes."""

    label: str
    data: bytes
    writes: int = 1


@dataclass
class FuzzReport:
    """What the module did with every input, and every way it differed from what was expected."""

    inputs: int = 0
    #: Inputs the module accepted, and ran once with each task after its predecessors.
    accepted: int = 0
    refused: int = 0
    seconds: float = 0.0
    #: (label, what Python says, what the module did) where they differ.
    disagreements: list[tuple[str, str, str]] = field(default_factory=list)
    #: (label, problem) for a refusal not by EINVAL, or not with exactly one log line.
    misreported: list[tuple[str, str]] = field(default_factory=list)
    #: (label, how the module's parse differs from Python's) for an accepted text.
    misparsed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.disagreements and not self.misreported and not self.misparsed

    def summary(self) -> str:
        line = (f"kserver graph fuzz: {self.inputs} inputs in {self.seconds:.1f} s, {self.accepted} accepted and run, "
                f"{self.refused} refused; {len(self.disagreements)} Python/C disagreements, "
                f"{len(self.misreported)} refusals misreported, {len(self.misparsed)} graphs parsed differently")
        shown = [f"  {label}: Python {want}, module {got}" for label, want, got in self.disagreements[:5]]
        shown += [f"  {label}: {problem}" for label, problem in (self.misreported + self.misparsed)[:5]]
        return "\n".join([line, *shown])


def _text(graph: g.TaskGraph) -> bytes:
    return graph.to_text().encode()


def limit_inputs(repeat: int) -> Iterator[FuzzInput]:
    """Graphs at each of the module's limits and one past it."""
    most = g.TaskGraph({i: g.Task(i, "busy", 1) for i in range(g.MAX_TASKS)})
    yield FuzzInput("limit: most tasks", _text(most))
    yield FuzzInput("limit: a task id past the last", _text(most) + f"task {g.MAX_TASKS} busy 1\n".encode())
    yield FuzzInput("limit: deepest chain", _text(g.chain(g.MAX_TASKS, value=1)), writes=7)
    fan = g.TaskGraph({i: g.Task(i, "busy", 1) for i in range(g.MAX_TASKS)})
    fan.edges = [(0, i) for i in range(1, g.MAX_TASKS)]
    yield FuzzInput("limit: widest fan", _text(fan), writes=3)
    side = int(g.MAX_EDGES ** 0.5)
    bipartite = g.TaskGraph({i: g.Task(i, "busy", 1) for i in range(2 * side + 1)})
    bipartite.edges = [(a, side + b) for a in range(side) for b in range(side)]
    yield FuzzInput("limit: most edges", _text(bipartite), writes=16)
    yield FuzzInput("limit: an edge past the most", _text(bipartite) + f"edge {2 * side - 1} {2 * side}\n".encode())
    for kind, top in g.KINDS.items():
        for value, name in ((top, "largest"), (top + 1, "one past the largest")):
            yield FuzzInput(f"limit: the {name} {kind}", f"task 0 {kind} {value}\n".encode())
    per_task = g.KINDS["mem"]
    full = g.MAX_MEM_KIB // per_task
    mem = "".join(f"task {i} mem {per_task}\n" for i in range(full))
    yield FuzzInput("limit: mem tasks writing the most", mem.encode())
    yield FuzzInput("limit: mem tasks writing 1 KiB more", (mem + f"task {full} mem 1\n").encode())
    samples = min(g.MAX_SAMPLES // (2 * repeat), g.MAX_TASKS)
    for count, name in ((samples, "the most samples"), (samples + 1, "a task past the most samples")):
        if count <= g.MAX_TASKS:
            yield FuzzInput(f"limit: {name}", _text(g.TaskGraph({i: g.Task(i, "sleep", 0) for i in range(count)})))
    base = b"task 0 busy 1\n"
    for size, name in ((g.MAX_TEXT, "the longest text"), (g.MAX_TEXT + 1, "a text 1 byte too long")):
        padding = b"#" * (size - len(base) - 1) + b"\n"
        yield FuzzInput(f"limit: {name}", base + padding, writes=5)


def random_graph(rng: random.Random) -> g.TaskGraph:
    """A small random DAG (edges go from a lower to a higher position of a random id order)."""
    n = rng.randint(1, 24)
    ids = rng.sample(range(g.MAX_TASKS), n) if rng.random() < 0.5 else list(range(n))
    graph = g.TaskGraph()
    for task_id in ids:
        kind = rng.choice(list(g.KINDS))
        graph.add(g.Task(task_id, kind, rng.randint(0, {"busy": 5000, "sleep": 50, "mem": 16}[kind])))
    pairs = {(ids[a], ids[b]) for a in range(n) for b in range(a + 1, n) if rng.random() < 0.15}
    graph.edges = sorted(pairs)
    rng.shuffle(graph.edges)
    return graph


def mutate(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    """One random change to a graph text, named."""
    lines = data.split(b"\n")
    how = rng.choice(("truncate", "flip", "insert", "number", "duplicate", "reverse edge", "case", "words",
                      "crlf", "blanks", "garbage line", "kind", "drop line", "edge to nowhere"))
    pick = rng.randrange(max(len(lines) - 1, 1))
    if how == "truncate":
        return how, data[:rng.randrange(len(data) + 1)]
    if how == "flip" and data:
        at = rng.randrange(len(data))
        return how, data[:at] + bytes([rng.randrange(256)]) + data[at + 1:]
    if how == "insert":
        at = rng.randrange(len(data) + 1)
        return how, data[:at] + rng.choice(EDGY_BYTES) + data[at:]
    if how == "number":
        words = lines[pick].split(b" ")
        numeric = [i for i, w in enumerate(words) if w.isdigit()]
        if numeric:
            words[rng.choice(numeric)] = rng.choice(EDGY_NUMBERS).encode("latin-1")
            lines[pick] = b" ".join(words)
    elif how == "duplicate":
        lines.insert(pick, lines[pick])
    elif how == "reverse edge" and lines[pick].startswith(b"edge"):
        lines.append(b" ".join([b"edge", *reversed(lines[pick].split()[1:])]))
    elif how == "case":
        lines[pick] = lines[pick].upper() if rng.random() < 0.5 else lines[pick].capitalize()
    elif how == "words":
        lines[pick] += rng.choice((b" 1", b" x", b"\t", b" # comment"))
        if rng.random() < 0.3:
            lines[pick] = lines[pick].rsplit(b" ", 2)[0]
    elif how == "crlf":
        return how, data.replace(b"\n", b"\r\n")
    elif how == "blanks":
        return how, data.replace(b" ", rng.choice((b"\t", b"  ", b"\x0b", b"\x0c", b" \t ", b"\xa0")))
    elif how == "garbage line":
        lines.insert(pick, bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))))
    elif how == "kind":
        lines[pick] = lines[pick].replace(rng.choice((b"busy", b"sleep", b"mem")),
                                          rng.choice((b"bus", b"busyy", b"B\xc3\xbcsy", b"sleep\x00", b"")), 1)
    elif how == "drop line":
        del lines[pick]
    elif how == "edge to nowhere":
        lines.append(f"edge 0 {rng.choice((g.MAX_TASKS - 1, g.MAX_TASKS, 2**32))}".encode())
    return how, b"\n".join(lines)


def fuzz_inputs(count: int, seed: int, repeat: int) -> list[FuzzInput]:
    """``count`` inputs (at least the limit set): the limits first, then random graphs, each
    either as it is or mutated one to three times, some in several writes."""
    rng = random.Random(seed)
    inputs = list(limit_inputs(repeat))
    inputs += [FuzzInput("empty", b""), FuzzInput("only comments", b"# nothing\n#\n"),
               FuzzInput("only blanks", b" \t\n\r\n")]
    while len(inputs) < count:
        data = _text(random_graph(rng))
        labels = []
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            label, data = mutate(rng, data)
            labels.append(label)
        inputs.append(FuzzInput("mutated: " + ", ".join(labels) if labels else "random graph", data,
                                writes=rng.choice((1, 1, 1, 2, 3, 7))))
    return inputs


def described(graph: g.TaskGraph, repeat: int) -> list[str]:
    """What the module's ``parsed`` file reads after a trial of ``graph`` (its lines), made
    from Python's parse: ``tasks N edges E samples S``, then per task in declaration order
    ``ID KIND VALUE`` and its successors' ids."""
    successors = graph.successors()
    lines = [f"tasks {len(graph.tasks)} edges {len(graph.edges)} samples {2 * len(graph.tasks) * repeat}"]
    return lines + [" ".join(map(str, (t.id, t.kind, t.value, *successors[t.id]))) for t in graph.tasks.values()]


def _normal(lines: list[str]) -> list[tuple]:
    """Read-back lines, comparable: the header as it is, then each task's id, kind and cost with
    the set of its successors (their order is the parser's own)."""
    return [tuple(line.split()) if i == 0 else (tuple(line.split()[:3]), frozenset(line.split()[3:]))
            for i, line in enumerate(lines)]


def parse_difference(data: bytes, repeat: int, parsed: list[str]) -> str | None:
    """How the module's read-back ``parsed`` differs from Python's parse of ``data``, or None."""
    want = described(g.TaskGraph.check_text(data, repeat=repeat), repeat)
    mine, theirs = _normal(parsed), _normal(want)
    if mine == theirs:
        return None
    return next((f"line {i + 1}: module {parsed[i]!r}, Python {want[i]!r}"
                 for i, (a, b) in enumerate(zip(mine, theirs)) if a != b),
                f"module {len(parsed)} lines, Python {len(want)}")


def expected(item: FuzzInput, repeat: int) -> str | None:
    """What Python's parser says of an input: None when it accepts it, else its error."""
    try:
        g.TaskGraph.check_text(item.data, repeat=repeat)
    except WqkitError as exc:
        return str(exc)
    return None


def pack(inputs: list[FuzzInput]) -> bytes:
    """The feeder's input file: ``<u32 size><u8 writes><bytes>`` per input."""
    return b"".join(struct.pack("<IB", len(i.data), i.writes) + i.data for i in inputs)


def fuzz_kserver(target: Target, inputs: list[FuzzInput], repeat: int,
                 progress: Callable[[str], None] = print) -> FuzzReport:
    """Feed ``inputs`` to one load of wq_kserver (``repeat`` times per graph) on ``target``
    and compare each outcome with Python's; kmod.loaded fails on any splat or leak."""
    exchange = target.exchange_dir
    source, results = exchange / "fuzz-inputs.bin", exchange / "fuzz-results.tsv"
    source.write_bytes(pack(inputs))
    target.ensure_mounted("debugfs", "/sys/kernel/debug")
    progress(f"feeding {len(inputs)} graph texts to wq_kserver's {GRAPH_DIR}/trial")
    started = time.monotonic()
    try:
        with kmod.loaded(target, "wq_kserver", {"repeat": repeat}, progress=progress):
            target.run(f"{GUEST_PYTHON} -IS {FEEDER} {source} {results}", check=True, timeout=3600)
        lines = results.read_text(errors="replace").splitlines()
    finally:
        source.unlink(missing_ok=True)
        results.unlink(missing_ok=True)
    report = FuzzReport(inputs=len(inputs), seconds=time.monotonic() - started)
    if len(lines) != len(inputs):
        raise WqkitError(f"the fuzz feeder reported {len(lines)} outcomes for {len(inputs)} inputs")
    for item, line in zip(inputs, lines):
        error, count, first, parsed = (line.split("\t", 3) + ["", "", ""])[:4]
        want = expected(item, repeat)
        report.accepted += not error
        report.refused += bool(error)
        if (want is None) != (not error):
            report.disagreements.append((item.label, "accepts" if want is None else f"refuses ({want})",
                                         f"refuses ({error}: {first})" if error else "accepts"))
        elif error and error != "EINVAL":
            report.misreported.append((item.label, f"refused with {error}, not EINVAL: {first}"))
        elif int(count) != (1 if error else 0):
            report.misreported.append((item.label, f"{count} kernel log lines (want {1 if error else 0}): {first}"))
        elif not error and (difference := parse_difference(item.data, repeat, parsed.split("|"))):
            report.misparsed.append((item.label, difference))
    return report
