"""Task graphs for the kserver experiment: build them, write them in the module's format, bound them.

A task graph is a DAG whose nodes are work items with a cost and whose edges
say "must finish before". The kserver module (modules/kserver.c, to come)
reads it through debugfs in this text format, one declaration per line::

    # a comment
    task ID KIND VALUE      ID 0..MAX_TASKS-1; KIND busy (loop iterations),
                            sleep (µs) or mem (KiB written)
    edge FROM TO            task FROM must finish before task TO starts

A line's words are separated by ASCII blanks (space, tab, CR, VT, FF), numbers
are ASCII decimal digits (no sign), and a NUL byte anywhere refuses the text:
:meth:`TaskGraph.from_bytes` and the module parse exactly the same texts, which
wqkit's fuzzer checks on generated inputs (tests/test_kserver_fuzz.py).

wqkit checks a graph with the same rules as the module before anything boots
(:meth:`TaskGraph.validate`), builds the usual shapes (chain, fork-join,
pipeline, layered random DAGs), converts from and to networkx, reads the
Standard Task Graph set's files (Kasahara lab's STG format), and bounds the
makespan on P CPUs from given task durations: max(critical path, total / P).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

from wqkit.errors import WqkitError
from wqkit.runs.spec import experiment

#: What the module's parser takes: [limits] of modules/kserver.toml, which its C reads too.
_LIMITS = experiment("kserver").module_spec.limits
MAX_TASKS = _LIMITS["max_tasks"]
#: The largest value of each cost kind.
KINDS = {kind: _LIMITS[f"max_{kind}"] for kind in ("busy", "sleep", "mem")}
MAX_EDGES = _LIMITS["max_edges"]
#: KiB all mem tasks write in all (each into a buffer of its own).
MAX_MEM_KIB = _LIMITS["max_mem_kib"]
#: Bytes of the graph's text the module takes.
MAX_TEXT = _LIMITS["max_text"]
#: Samples one loaded graph may produce: 2 per task and repetition.
MAX_SAMPLES = _LIMITS["max_samples"]


#: What separates a line's words, in the module too (ASCII only).
WORD_SEPARATORS = re.compile(rb"[ \t\r\v\f]")


def _number(word: str, line: int) -> int:
    """A word of ASCII decimal digits as a number (no sign, no underscore, no other digits)."""
    if not re.fullmatch(r"[0-9]+", word, re.ASCII):
        raise WqkitError(f"line {line}: {word!r} is not a number (ASCII digits)")
    return int(word)


@dataclass(frozen=True)
class Task:
    """One work item of the graph and what it costs."""

    id: int
    kind: str = "busy"
    value: int = 10_000


@dataclass
class TaskGraph:
    """Tasks by id and the edges between them (``(before, after)`` pairs)."""

    tasks: dict[int, Task] = field(default_factory=dict)
    edges: list[tuple[int, int]] = field(default_factory=list)

    def add(self, task: Task) -> Task:
        self.tasks[task.id] = task
        return task

    def successors(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {t: [] for t in self.tasks}
        for before, after in self.edges:
            out.setdefault(before, []).append(after)
        return out

    def predecessors(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {t: [] for t in self.tasks}
        for before, after in self.edges:
            out.setdefault(after, []).append(before)
        return out

    def topological_order(self) -> list[int]:
        """Tasks in an order that respects every edge (Kahn); a cycle is a one-line error."""
        remaining = {t: len(p) for t, p in self.predecessors().items()}
        successors = self.successors()
        ready = sorted(t for t, n in remaining.items() if n == 0)
        order = []
        while ready:
            task = ready.pop(0)
            order.append(task)
            for after in successors.get(task, []):
                remaining[after] -= 1
                if remaining[after] == 0:
                    ready.append(after)
        if len(order) != len(self.tasks):
            stuck = sorted(t for t, n in remaining.items() if n > 0)
            raise WqkitError(f"task graph has a cycle through task {stuck[0]} ({len(stuck)} tasks on cycles)")
        return order

    def validate(self, repeat: int | None = None, text_size: int | None = None) -> TaskGraph:
        """The module's rules: ids, kinds and values in range, edges between existing tasks,
        no duplicate or self edge, no cycle; its text (``text_size`` bytes, default: its
        :meth:`to_text`), the memory of its mem tasks and its samples (run ``repeat`` times,
        default: the kserver declaration's) within the module's limits. Returns the graph; a
        violation is a one-line error."""
        if repeat is None:
            repeat = int(experiment("kserver").module_spec.param("repeat").default)
        if not self.tasks:
            raise WqkitError("task graph has no task")
        if 2 * len(self.tasks) * repeat > MAX_SAMPLES:
            raise WqkitError(f"task graph of {len(self.tasks)} tasks run {repeat} times makes "
                             f"{2 * len(self.tasks) * repeat} samples (at most {MAX_SAMPLES})")
        mem_kib = sum(t.value for t in self.tasks.values() if t.kind == "mem")
        if mem_kib > MAX_MEM_KIB:
            raise WqkitError(f"task graph's mem tasks write {mem_kib} KiB in all (at most {MAX_MEM_KIB})")
        if text_size is None:
            text_size = len(self.to_text().encode())
        if text_size > MAX_TEXT:
            raise WqkitError(f"task graph's text is {text_size} bytes (at most {MAX_TEXT})")
        if len(self.tasks) > MAX_TASKS or len(self.edges) > MAX_EDGES:
            raise WqkitError(f"task graph too large: {len(self.tasks)} tasks, {len(self.edges)} edges "
                             f"(at most {MAX_TASKS} and {MAX_EDGES})")
        for task in self.tasks.values():
            if not 0 <= task.id < MAX_TASKS:
                raise WqkitError(f"task {task.id}: id out of range (0..{MAX_TASKS - 1})")
            if task.kind not in KINDS:
                raise WqkitError(f"task {task.id}: unknown cost kind {task.kind!r} (known: {', '.join(KINDS)})")
            if not 0 <= task.value <= KINDS[task.kind]:
                raise WqkitError(f"task {task.id}: {task.kind} {task.value} is out of range "
                                 f"(0..{KINDS[task.kind]})")
        seen = set()
        for before, after in self.edges:
            for end in (before, after):
                if end not in self.tasks:
                    raise WqkitError(f"edge {before} -> {after}: no task {end}")
            if before == after:
                raise WqkitError(f"edge {before} -> {after}: a task cannot wait for itself")
            if (before, after) in seen:
                raise WqkitError(f"edge {before} -> {after} is given twice")
            seen.add((before, after))
        self.topological_order()
        return self

    # -- the module's text format ---------------------------------------------

    def to_text(self) -> str:
        lines = [f"task {t.id} {t.kind} {t.value}" for t in sorted(self.tasks.values(), key=lambda t: t.id)]
        lines += [f"edge {before} {after}" for before, after in self.edges]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str) -> TaskGraph:
        """Parse the module's format from a str (see :meth:`from_bytes`)."""
        return cls.from_bytes(text.encode())

    @classmethod
    def from_bytes(cls, data: bytes) -> TaskGraph:
        """Parse the module's format as the module does: a malformed line, a number that is
        not ASCII digits, a task declared twice or a NUL byte is a one-line error."""
        if (nul := data.find(b"\0")) >= 0:
            raise WqkitError(f"a NUL byte at offset {nul}")
        graph = cls()
        for number, raw in enumerate(data.split(b"\n"), 1):
            words = [w.decode("latin-1") for w in WORD_SEPARATORS.split(raw.split(b"#", 1)[0]) if w]
            if not words:
                continue
            if words[0] == "task" and len(words) == 4:
                task = Task(_number(words[1], number), words[2], _number(words[3], number))
                if task.id in graph.tasks:
                    raise WqkitError(f"line {number}: task {task.id} is declared twice")
                graph.add(task)
            elif words[0] == "edge" and len(words) == 3:
                graph.edges.append((_number(words[1], number), _number(words[2], number)))
            else:
                raise WqkitError(f"line {number}: not 'task ID KIND VALUE' or 'edge FROM TO': "
                                 f"{raw.decode(errors='replace').strip()!r}")
        return graph

    @classmethod
    def check_text(cls, data: bytes, repeat: int | None = None) -> TaskGraph:
        """What the module's parser says of ``data`` with ``repeat``: the graph, or the
        one-line error it refuses it with."""
        if len(data) > MAX_TEXT:
            raise WqkitError(f"task graph's text is {len(data)} bytes (at most {MAX_TEXT})")
        return cls.from_bytes(data).validate(repeat=repeat, text_size=len(data))

    # -- networkx ----------------------------------------------------------------

    def to_networkx(self):
        """A networkx DiGraph whose nodes carry ``kind`` and ``value``."""
        import networkx as nx

        graph = nx.DiGraph()
        for task in self.tasks.values():
            graph.add_node(task.id, kind=task.kind, value=task.value)
        graph.add_edges_from(self.edges)
        return graph

    @classmethod
    def from_networkx(cls, graph, kind: str = "busy", value: int = 10_000) -> TaskGraph:
        """From a networkx DiGraph; nodes are renumbered 0..n-1 in sorted order and keep their
        ``kind``/``value`` attributes (else the given defaults)."""
        ids = {node: i for i, node in enumerate(sorted(graph.nodes, key=str))}
        out = cls()
        for node, i in ids.items():
            attrs = graph.nodes[node]
            out.add(Task(i, attrs.get("kind", kind), int(attrs.get("value", value))))
        out.edges = [(ids[a], ids[b]) for a, b in graph.edges]
        return out

    # -- bounds ------------------------------------------------------------------

    def critical_path(self, duration: Mapping[int, float]) -> tuple[float, list[int]]:
        """The longest chain of ``duration`` (by task id) through the graph, and its tasks."""
        finish: dict[int, float] = {}
        best_pred: dict[int, int | None] = {}
        predecessors = self.predecessors()
        for task in self.topological_order():
            before = max(predecessors[task], key=lambda p: finish[p], default=None)
            best_pred[task] = before
            finish[task] = (finish[before] if before is not None else 0.0) + duration[task]
        end = max(finish, key=finish.get)
        path = [end]
        while best_pred[path[-1]] is not None:
            path.append(best_pred[path[-1]])
        return finish[end], path[::-1]

    def makespan_lower_bound(self, duration: Mapping[int, float], cpus: int,
                             work: Mapping[int, float] | None = None) -> float:
        """No schedule on ``cpus`` CPUs beats max(critical path of ``duration``, total ``work`` / cpus).

        ``work`` is the time each task occupies a CPU (default: its whole duration). A task
        that sleeps delays its successors for its whole duration but leaves its CPU to others:
        its duration counts on the path, not as work.
        """
        work = duration if work is None else work
        return max(self.critical_path(duration)[0], sum(work[t] for t in self.tasks) / cpus)

    def cpu_work(self, duration: Mapping[int, float]) -> dict[int, float]:
        """The part of each task's ``duration`` that occupies a CPU: all of it for busy and mem
        tasks (a loop, a memset), none of it for sleep tasks."""
        return {t: 0.0 if task.kind == "sleep" else duration[t] for t, task in self.tasks.items()}


# -- shapes ------------------------------------------------------------------------

def chain(n: int = 8, kind: str = "busy", value: int = 10_000) -> TaskGraph:
    """n tasks one after the other."""
    graph = TaskGraph({i: Task(i, kind, value) for i in range(n)})
    graph.edges = [(i, i + 1) for i in range(n - 1)]
    return graph


def fork_join(width: int = 8, depth: int = 1, kind: str = "busy", value: int = 10_000) -> TaskGraph:
    """depth rounds of: one task forks ``width`` parallel tasks, which join into the next task."""
    graph = TaskGraph()
    join = graph.add(Task(0, kind, value)).id
    for _ in range(depth):
        branch = [graph.add(Task(len(graph.tasks), kind, value)).id for _ in range(width)]
        graph.edges += [(join, b) for b in branch]
        after = graph.add(Task(len(graph.tasks), kind, value)).id
        graph.edges += [(b, after) for b in branch]
        join = after
    return graph


def pipeline(stages: int = 4, items: int = 8, kind: str = "busy", value: int = 10_000) -> TaskGraph:
    """``items`` items through ``stages`` stages: (stage s, item i) follows (s-1, i) and (s, i-1)."""
    graph = TaskGraph()
    ident = {(s, i): s * items + i for s in range(stages) for i in range(items)}
    for (s, i), task_id in ident.items():
        graph.add(Task(task_id, kind, value))
        if s:
            graph.edges.append((ident[(s - 1, i)], task_id))
        if i:
            graph.edges.append((ident[(s, i - 1)], task_id))
    return graph


def layered(layers: int = 4, width: int = 6, p: float = 0.4, seed: int = 0, kind: str = "busy",
            value: int = 10_000) -> TaskGraph:
    """A random layered DAG: each task of a layer follows each task of the previous layer with
    probability ``p`` (and at least one), reproducible from ``seed``."""
    rng = random.Random(seed)
    graph = TaskGraph()
    previous: list[int] = []
    for _ in range(layers):
        layer = [graph.add(Task(len(graph.tasks), kind, value)).id for _ in range(width)]
        for task in layer:
            if previous:
                before = [b for b in previous if rng.random() < p] or [rng.choice(previous)]
                graph.edges += [(b, task) for b in before]
        previous = layer
    return graph


SHAPES: dict[str, Callable[..., TaskGraph]] = {"chain": chain, "fork-join": fork_join, "pipeline": pipeline,
                                               "layered": layered}


def parse_shape(spec: str) -> TaskGraph:
    """``"fork-join:width=16,depth=2"`` to a graph; unknown shapes or sizes are one-line errors."""
    name, _, args = spec.partition(":")
    if name not in SHAPES:
        raise WqkitError(f"unknown graph shape {name!r} (known: {', '.join(SHAPES)})")
    kwargs: dict[str, object] = {}
    for item in filter(None, args.split(",")):
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise WqkitError(f"graph shape {spec!r}: {item!r} is not NAME=VALUE")
        kwargs[key] = value if key == "kind" else (float(value) if key == "p" else _int(spec, key, value))
    try:
        return SHAPES[name](**kwargs).validate()
    except TypeError:
        raise WqkitError(f"graph shape {name!r} takes no {', '.join(kwargs)} (see wqkit.experiments.graph.{name.replace('-', '_')})") \
            from None


def _int(spec: str, key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise WqkitError(f"graph shape {spec!r}: {key}={value!r} is not an integer") from None


def read_stg(text: str, kind: str = "busy", scale: int = 1000) -> TaskGraph:
    """A graph of the Standard Task Graph set (Kasahara lab's STG format).

    An STG file gives the number N of real tasks, then N + 2 lines
    ``task processing_time number_of_predecessors predecessor...``, task 0 and
    task N+1 being zero-cost entry and exit nodes; lines after that (or
    starting with ``#``) are comments. The dummy nodes are kept (cost 0) so
    that the graph's shape is the file's; each processing time becomes a
    ``kind`` cost of ``time * scale``.
    """
    numbers = [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    try:
        n = int(numbers[0][0])
        graph = TaskGraph()
        for row in numbers[1:n + 3]:
            task, time, count = int(row[0]), int(row[1]), int(row[2])
            graph.add(Task(task, kind, time * scale))
            graph.edges += [(int(p), task) for p in row[3:3 + count]]
    except (IndexError, ValueError):
        raise WqkitError("not a Standard Task Graph file (N, then N+2 lines: task time npred preds...)") from None
    if len(graph.tasks) != n + 2:
        raise WqkitError(f"STG file announces {n} tasks (+2 dummies) but gives {len(graph.tasks)}")
    return graph.validate()
