"""Running a tracer in the target, the same way for both engines.

A tracer program exists twice under one name: ``bpftrace/NAME.bt``, which
bpftrace compiles and runs in the target, and ``bcc/NAME.c``, a CO-RE program
built on the host and loaded in the target by ``bcc/load.c``
(:mod:`wqkit.trace.compiled`). Both print the same lines; arguments are given
in order, as bpftrace's positional parameters ($1, $2...) and as the C
program's ``const volatile`` globals of the same names.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from shlex import quote
from typing import Callable, Mapping

import pandas as pd

from wqkit.errors import LabError, WqkitError
from wqkit.runs.kinds import RunKind, runner, tracer_param
from wqkit.target import LabTarget, Target
from wqkit.trace.compiled import bpf_object, loader

#: What a tracer's ``engine`` takes (one engine, or both at once on the same load) and the engine
#: it uses when none is named: declared in tracer_params.toml.
ENGINE_CHOICES = tracer_param("engine").choices
DEFAULT_ENGINE = str(tracer_param("engine").default)
ENGINES = tuple(e for e in ENGINE_CHOICES if e != "both")
PROGRAM_DIR = Path(__file__).parent
TRACEFS = "/sys/kernel/tracing"
#: Seconds to wait for a tracer to attach (bpftrace compiles in the target: 8-15 s under TCG, about
#: a minute on a busy machine); longer by the kernel's slowdown on a kernel built with sanitizers
#: (the verifier and the probes' registration run instrumented).
ATTACH_TIMEOUT = 300.0
#: Before stopping a tracer, how long its output must stay the same (it has printed what the
#: kernel emitted), and the longest wait for that.
QUIET_S, DRAIN_TIMEOUT = 1.0, 60.0
#: Seconds a tracer gets to print its maps and detach after SIGINT (minutes under TCG on a busy machine).
DETACH_TIMEOUT = 600.0
#: Seconds between SIGINTs to a tracer that has not exited yet: a signal that lands between
#: bpftrace's check of its exit flag and its wait for events (no timeout) is lost, and it then
#: waits for an event that never comes (seen in CI: 600 s in epoll_wait, all items printed).
RESIGNAL_EVERY = 5
#: bpftrace's perf buffer (pages per CPU), for floods of events.
BPFTRACE_PERF_RB_PAGES = 1024
#: Keys each map of a program holds (bpftrace's BPFTRACE_MAP_KEYS_MAX, BCC's MAP_KEYS): what
#: does not fit is counted and fails the run.
MAP_KEYS = 65536
HIST_LINE = re.compile(r"^\[(\S+), (\S+)[\])]\s+(\d+) \|")
LOST_LINE = re.compile(r"Lost (\d+) events")
#: What every tracer prints once all its probes are attached (bpftrace prints "Attaching N
#: probes..." before it attaches them).
ATTACHED = "ATTACHED"
KILLED = "wqkit: killed after"
#: A kprobe event that a lab guest keeps armed from its first tracer on, on a function never called
#: while it runs. Linux 7.3 (Debian's 7.3.4 source, seen under TCG) crashes on the first hit of an
#: ftrace-based kprobe armed after every earlier one was removed: kprobe_ftrace_ops' trampoline,
#: freed with the last kprobe and allocated again from the execmem ROX cache, calls NULL
#: (``echo 1 >`` / ``echo 0 >`` / ``echo 1 >`` a kprobe event's ``enable`` is enough; 6.12 is fine).
#: With one kprobe armed for the guest's life that trampoline is allocated once and never freed;
#: the tracers' own probes are added to the same ftrace_ops, as on a fresh boot.
TRAMPOLINE_KEEPER = ("wqkit_keep", "ftrace_ops", "__x64_sys_reboot")


def attach_timeout(target: Target) -> float:
    """How long a tracer may take to attach on ``target``."""
    return ATTACH_TIMEOUT * (target.kernel.slowdown if isinstance(target, LabTarget) else 1)


@dataclass
class TracerProgram:
    """One tracer program: its name, the probe points it attaches, its arguments in order."""

    name: str
    probes: list[str]
    args: dict[str, str] = field(default_factory=dict)
    map_keys: int = MAP_KEYS
    #: A declared tracer's directory, holding NAME.bt / NAME.c beside its TOML (None: wqkit's
    #: own programs, in bpftrace/ and bcc/ here). Its program is copied into the target.
    directory: Path | None = None

    def source(self, engine: str) -> Path:
        ext = 'bt' if engine == 'bpftrace' else 'c'
        return self.directory / f"{self.name}.{ext}" if self.directory else PROGRAM_DIR / engine / f"{self.name}.{ext}"

    def check_engines(self, engines: list[str]) -> None:
        """A one-line error when the program has no source for one of ``engines``."""
        missing = [e for e in engines if not self.source(e).is_file()]
        if missing:
            raise WqkitError(f"{self.name} has no {' nor '.join(missing)} program "
                             f"({', '.join(str(self.source(e)) for e in missing)})")


def check_engines(engines: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"bcc"``, ``"bpftrace"``, ``"both"`` or a list of engines, checked; the list."""
    chosen = list(ENGINES) if engines == "both" else [engines] if isinstance(engines, str) else list(engines)
    for engine in chosen:
        if engine not in ENGINES:
            raise WqkitError(f"unknown engine {engine!r}: choose bpftrace, bcc or both")
    if not chosen or len(set(chosen)) != len(chosen):
        raise WqkitError(f"engines {chosen!r}: give each engine once")
    return chosen


def run_tracer(kind: RunKind, given: Mapping[str, object], **run_options) -> Path:
    """A tracer kind's run from its Python API's arguments (None: the declared default), where
    ``engine`` may also be a list of engines: checked here, since the declaration's choice is
    one engine or both."""
    engine = given.get("engine")
    engines = check_engines(engine) if isinstance(engine, (list, tuple)) else None
    own, load = kind.split({**given, "engine": None if engines else engine})
    return runner(kind.runner)(kind, own | ({"engine": engines} if engines else {}), load, **run_options)


def check_root(target: Target) -> None:
    """Tracing needs root in the target (the lab's guest runs as root)."""
    if target.run("id -u").stdout.strip() != "0":
        raise WqkitError(f"tracing {target.release} needs root: run wqkit as root (or with sudo) for --target local")


class GuestTracer:
    """One engine running one program in the target, in the background.

    Its output goes to a directory of its own (``mktemp -d``, mode 0700) and its pid is kept
    here, never in a file at a fixed path: on a local target the tracer runs as root, and a
    file another user made first must not choose what root signals or overwrites.
    """

    def __init__(self, target: Target, engine: str, program: TracerProgram) -> None:
        self.target, self.engine, self.program = target, engine, program
        self.directory: str | None = None
        self.pid: int | None = None
        self.attach_s: float | None = None
        #: Whether its output stopped growing before it was stopped (False: still printing at
        #: DRAIN_TIMEOUT, so what it had not printed yet is lost).
        self.drained = True
        self.text = ""
        #: The program's path in the target (a declared tracer's is copied there when it starts).
        self.guest_source = str(program.source(engine))

    @property
    def output(self) -> str:
        return f"{self.directory}/{self.engine}.out"

    def command(self) -> str:
        source = quote(self.guest_source)
        if self.engine == "bpftrace":
            return (f"env BPFTRACE_PERF_RB_PAGES={BPFTRACE_PERF_RB_PAGES} BPFTRACE_MAP_KEYS_MAX={self.program.map_keys} "
                    f"bpftrace {source} " + " ".join(quote(v) for v in self.program.args.values()))
        args = {**self.program.args, "MAP_KEYS": self.program.map_keys}
        return f"{quote(str(loader()))} {source} " + " ".join(quote(f"{k}={v}") for k, v in args.items())

    def start(self) -> None:
        self.started = time.monotonic()
        self.directory = self.target.run("mktemp -d /tmp/wqkit-trace.XXXXXXXX", check=True).stdout.strip()
        source = self.program.source(self.engine)
        if self.engine == "bcc":                    # built on the host into the cache, which the target sees
            self.guest_source = str(bpf_object(source, self.target.btf))
        elif self.program.directory is not None:    # a declared tracer's program: wherever it is on the host
            self.guest_source = f"{self.directory}/{source.name}"
            self.target.write(self.guest_source, source.read_text(), create=True)
        pid = self.target.run(f"setsid {self.command()} > {self.output} 2>&1 < /dev/null & echo $!",
                              check=True).stdout.strip()
        self.pid = int(pid)

    def alive(self) -> bool:
        """Whether the tracer still runs (its /proc entry is there and not a zombie's)."""
        if self.pid is None:
            return False
        try:
            stat = self.target.read(f"/proc/{self.pid}/stat")
        except LabError:
            raise
        except WqkitError:
            return False
        return stat.rsplit(")", 1)[-1].split()[0] != "Z"

    def drain(self) -> None:
        """Until the tracer's output has stopped growing for QUIET_S (at most DRAIN_TIMEOUT): the
        events the kernel emitted are printed from its ring buffers by the tracer's own process,
        later under TCG, and a tracer stopped with events unread drops them."""
        deadline, size, quiet_since = time.monotonic() + DRAIN_TIMEOUT, -1, time.monotonic()
        while self.pid is not None and time.monotonic() < deadline:
            now = self.target.size(self.output)
            if now != size:
                size, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_S:
                return
            time.sleep(0.2)
        self.drained = self.pid is None

    def wait_attached(self) -> None:
        """Until the tracer prints ATTACHED (after every probe is attached: bpftrace 0.17's
        BEGIN fires before the attach loop, but its printf reaches the output only through the
        polling that starts after it; the C programs' loader prints it once every link exists); a one-line error if
        it dies or takes too long. Polled with the target's reads: a shell command per poll
        would compete with the tracer for the guest's CPUs."""
        timeout = attach_timeout(self.target)
        deadline = self.started + timeout
        while not re.search(f"^{ATTACHED}$", text := self.target.read(self.output), re.M):
            if not self.alive():
                last = [line for line in text.strip().splitlines() if "error" in line.lower()] or \
                    text.strip().splitlines() or ["no output"]
                raise WqkitError(f"{self.engine} did not start {self.program.name}: {last[-1].strip()}")
            if time.monotonic() > deadline:
                raise WqkitError(f"{self.engine} did not attach within {timeout:g} s")
            time.sleep(0.2)
        self.attach_s = round(time.monotonic() - self.started, 2)

    def stop(self) -> str:
        """SIGINT (the tracer prints its maps and detaches; again every RESIGNAL_EVERY seconds),
        wait, SIGKILL if it hangs; its output.

        A tracer that had to be killed says so at the end of its output, with
        what its threads were waiting on.
        """
        if self.directory is None:
            return self.text
        if self.pid is not None:
            p = self.pid
            self.target.run(
                f"kill -INT {p} 2>/dev/null; end=$(($(date +%s) + {int(DETACH_TIMEOUT)})); n=0; "
                f"while kill -0 {p} 2>/dev/null && [ $(date +%s) -lt $end ]; do sleep 0.5; n=$((n + 1)); "
                f"[ $((n % {RESIGNAL_EVERY * 2})) -eq 0 ] && kill -INT {p} 2>/dev/null; done; "
                f"kill -0 {p} 2>/dev/null || exit 0; "
                f"(echo '{KILLED} {DETACH_TIMEOUT:g} s without detaching'; "
                f"grep -h State /proc/{p}/task/*/status; cat /proc/{p}/task/*/stack) >> {self.output} 2>&1; "
                f"kill -KILL {p}", timeout=DETACH_TIMEOUT + 120)
            self.pid = None
        self.text = self.target.run(f"cat {self.output}").stdout
        self.target.run(f"rm -rf {quote(self.directory)}")
        self.directory = None
        return self.text


def mount_tracefs(target: Target) -> None:
    target.ensure_mounted("tracefs", TRACEFS)
    target.ensure_mounted("debugfs", "/sys/kernel/debug")


def keep_kprobe_trampoline(target: Target) -> None:
    """Arm :data:`TRAMPOLINE_KEEPER` in a lab guest, once (a user's own kernel is left as it is)."""
    if not isinstance(target, LabTarget):
        return
    group, event, function = TRAMPOLINE_KEEPER
    target.run(f"grep -q '^p:{group}/{event} ' {TRACEFS}/kprobe_events || "
               f"{{ echo 'p:{group}/{event} {function}' >> {TRACEFS}/kprobe_events && "
               f"echo 1 > {TRACEFS}/events/{group}/{event}/enable; }}", check=True)


class Tracing:
    """Every engine running one program, attached, for a ``with`` block; always stopped after it.

    Their output is in each tracer's ``text`` once the block is left, even
    when it raised (a timeout, Ctrl-C): what they collected is kept.
    """

    def __init__(self, target: Target, engines: list[str], program: TracerProgram,
                 progress: Callable[[str], None]) -> None:
        self.target, self.program, self.progress = target, program, progress
        self.tracers = [GuestTracer(target, engine, program) for engine in engines]
        #: What read_kprobe_misses() found when the tracers stopped.
        self.kprobe_misses: dict = {}

    def __enter__(self) -> Tracing:
        mount_tracefs(self.target)
        keep_kprobe_trampoline(self.target)
        try:
            for tracer in self.tracers:
                self.progress(f"starting {tracer.engine} {self.program.name} ("
                              + ("compiled on the host, loading" if tracer.engine == "bcc" else
                                 "compiling and attaching: seconds to a minute under TCG") + ")")
                tracer.start()
            for tracer in self.tracers:
                tracer.wait_attached()
                self.progress(f"{tracer.engine} attached in {tracer.attach_s:g} s")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        if exc_type is None:
            for tracer in self.tracers:
                tracer.drain()
        self.stop()

    def stop(self) -> None:
        """Read the kprobes' missed hits while the probes are still registered, then stop every tracer."""
        if any(tracer.pid is not None for tracer in self.tracers):
            self.kprobe_misses = read_kprobe_misses(self.target, probed_functions(self.program.probes))
        for tracer in self.tracers:
            tracer.stop()


def probed_functions(probes: list[str]) -> list[str]:
    """The kernel functions of a program's kprobe and kretprobe probe points."""
    return sorted({probe.split(":", 1)[1] for probe in probes if probe.split(":", 1)[0] in ("kprobe", "kretprobe")})


def read_kprobe_misses(target: Target, functions: list[str]) -> dict:
    """Per function, the kprobes and kretprobes registered on it and the hits and returns they
    missed (:func:`wqkit.inspect.kprobes.kprobe_misses`), read from the kernel's memory: from
    the guest's RAM in the lab, /proc/kcore on a local kernel. ``{"not_read": why}`` when it cannot be read."""
    if not functions:
        return {}
    from drgn import FaultError

    from wqkit.inspect.kprobes import kprobe_misses
    from wqkit.inspect.sources import target_program

    try:
        with target_program(target) as prog:
            return {function: kprobe_misses(prog, function) for function in functions}
    except (WqkitError, LookupError, FaultError, OSError) as exc:
        return {"not_read": str(exc).splitlines()[0]}


def parse_histogram(text: str) -> dict[int, int]:
    """The log2 histogram a tracer printed: bucket low bound -> count."""
    hist = {}
    for line in text.splitlines():
        if match := HIST_LINE.match(line.strip()):
            hist[_size(match.group(1))] = int(match.group(3))
    return hist


def lost_events(text: str) -> int:
    """Events the tracer said it lost (perf buffer overflow, full maps)."""
    return sum(int(match.group(1)) for match in LOST_LINE.finditer(text))


def _size(text: str) -> int:
    """bpftrace's bucket bounds (512, 1K, 4M) as integers."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def keep_outputs(tracing: Tracing, dest: Path, meta: dict,
                 parse: Callable[[str], tuple[pd.DataFrame, bool]]) -> pd.DataFrame:
    """Keep each tracer's output (``trace-ENGINE.txt``) and, in ``meta["tracers"]``, its attach
    time, histogram, counts and losses, and in ``meta["kprobe_misses"]`` what the kernel's probes
    missed; return the parsed events of all, with an ``engine`` column."""
    frames, meta["tracers"] = [], {}
    meta["kprobe_misses"] = tracing.kprobe_misses
    for tracer in tracing.tracers:
        (dest / f"trace-{tracer.engine}.txt").write_text(tracer.text)
        events, truncated = parse(tracer.text)
        frames.append(events.assign(engine=tracer.engine))
        kinds = events["event"] if "event" in events else pd.Series([], dtype=str)
        meta["tracers"][tracer.engine] = {
            "attach_s": tracer.attach_s, "histogram_ns_log2": parse_histogram(tracer.text),
            "counts": {name: int((kinds == name).sum()) for name in sorted(set(kinds))},
            "lost_events": lost_events(tracer.text), "events_truncated": truncated,
            "killed": KILLED in tracer.text, "drained": tracer.drained}
    return pd.concat(frames, ignore_index=True)


def check_lost(meta: dict) -> None:
    """Raise (the run is then marked failed) when a tracer lost events, had to be killed or was
    still printing when stopped (then what it had not printed yet is lost too), or when the
    kernel's probe miss counts could not be read (a lost hit could not be ruled out)."""
    killed = [engine for engine, t in meta["tracers"].items() if t["killed"]]
    if killed:
        raise WqkitError(f"{', '.join(killed)} did not stop within {DETACH_TIMEOUT:g} s of SIGINT and was killed: "
                         "its output may be incomplete")
    undrained = [engine for engine, t in meta["tracers"].items() if not t.get("drained", True)]
    if undrained:
        raise WqkitError(f"{', '.join(undrained)} still printed events {DRAIN_TIMEOUT:g} s after the load ended: "
                         "what it had not printed when stopped is lost")
    if "not_read" in meta.get("kprobe_misses", {}):
        raise WqkitError(f"the kernel's kprobe miss counts could not be read ({meta['kprobe_misses']['not_read']}): "
                         "a missed hit cannot be ruled out")
    lost = {engine: t["lost_events"] for engine, t in meta["tracers"].items() if t["lost_events"]}
    if lost:
        raise WqkitError("the tracer lost events: " + ", ".join(f"{e} {n}" for e, n in lost.items()))
    missed = {function: probes["missed"] for function, probes in meta.get("kprobe_misses", {}).items()
              if probes["missed"]}
    if missed:
        raise WqkitError("the kernel's probes missed hits or returns (a probe inside another's handler, or "
                         "no kretprobe instance left): " + ", ".join(f"{f} {n}" for f, n in missed.items()))
