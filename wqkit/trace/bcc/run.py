"""Run one of wqkit's BCC programs in the traced kernel and print its events as text.

Runs inside the target with the system Python that has BCC
(``/usr/bin/python3 run.py PROGRAM.c [NAME=VALUE ...]``); it imports nothing
of wqkit, so that it works in the lab guest and on a local kernel alike.

- ``NAME=VALUE`` become ``-DNAME=VALUE`` (strings are quoted).
- Offsets of the kernel's internal structures (``struct worker`` is not in
  the headers BCC compiles against) are read from the kernel's own BTF,
  ``/sys/kernel/btf/vmlinux``, and passed as ``-D<STRUCT>__<MEMBER>=offset``.
- Output is the same as the bpftrace programs': "Attaching N probes..." and
  "ATTACHED" once attached, one line per event, then on SIGINT the log2 histograms in
  bpftrace's layout and "Lost N events" if the perf buffer overflowed.
"""

from __future__ import annotations

import ctypes
import re
import signal
import struct
import sys
from pathlib import Path

BTF = Path("/sys/kernel/btf/vmlinux")
#: The members whose offsets the programs use: STRUCT__MEMBER.
MEMBERS = (("worker", "task"), ("worker", "pool"), ("worker_pool", "id"))
#: Event kinds (events.h) and how each prints: the bpftrace programs' lines.
LINES = {
    1: ("FLOOD", "{v[0]}"),
    2: ("CREATE", "{pid} {pool} {v[0]} {v[1]} {v[2]}"),
    3: ("FAILED", "{pool} {v[0]} {v[1]} {v[2]}"),
    4: ("FIRST", "{pid} {v[0]}"),
    5: ("DYING", "{pid} {pool} {v[0]}"),
    6: ("DEAD", "{pid} {v[0]}"),
    7: ("ITEM", "{v[0]} {v[1]} {v[2]} {v[3]} {v[4]} {v[5]} {cpu} {pid} {symbol} {name}"),
    8: ("QUEUED", "{v[0]}"),
}
#: Perf buffer pages per CPU (4 MiB): a TCG guest drains it slowly.
PAGES = 1024


class Event(ctypes.Structure):
    """struct wqkit_event (events.h)."""

    _fields_ = [("v", ctypes.c_uint64 * 6), ("kind", ctypes.c_uint32), ("pid", ctypes.c_int32),
                ("pool", ctypes.c_int32), ("cpu", ctypes.c_uint32), ("name", ctypes.c_char * 32)]


def btf_member_offsets(data: bytes, wanted: tuple[tuple[str, str], ...]) -> dict[str, int]:
    """Byte offsets of ``(struct, member)`` pairs, read from raw BTF (first struct of each name)."""
    magic, _version, _flags, hdr_len, type_off, type_len, str_off, _str_len = struct.unpack_from("<HBBIIIII", data)
    if magic != 0xEB9F:
        raise SystemExit("wqkit: unreadable BTF (bad magic)")
    strings = hdr_len + str_off

    def name(off: int) -> str:
        return data[strings + off:data.index(b"\0", strings + off)].decode()

    structs = {s for s, _ in wanted}
    found: dict[str, int] = {}
    pos, end = hdr_len + type_off, hdr_len + type_off + type_len
    # Bytes after the 12-byte header, per kind (vlen-scaled where the kind has members).
    extra = {1: 4, 3: 12, 14: 4, 17: 4}
    per_member = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
    while pos < end:
        name_off, info, _size = struct.unpack_from("<III", data, pos)
        kind, vlen, kflag = (info >> 24) & 0x1F, info & 0xFFFF, info >> 31
        pos += 12
        if kind == 4 and name(name_off) in structs:
            sname = name(name_off)
            for i in range(vlen):
                m_name, _type, offset = struct.unpack_from("<III", data, pos + 12 * i)
                bits = offset & 0xFFFFFF if kflag else offset
                key = f"{sname}__{name(m_name)}"
                if (sname, name(m_name)) in wanted and key not in found:
                    found[key] = bits // 8
        pos += extra.get(kind, 0) + per_member.get(kind, 0) * vlen
    missing = [f"{s}.{m}" for s, m in wanted if f"{s}__{m}" not in found]
    if missing:
        raise SystemExit(f"wqkit: this kernel's BTF has no {', '.join(missing)}")
    return found


def with_includes(program: Path) -> str:
    """The program's text with its ``#include "FILE"`` lines (files next to it) replaced by their text."""
    return re.sub(r'^#include "([^"]+)"$', lambda m: with_includes(program.with_name(m.group(1))),
                  program.read_text(), flags=re.M)


def cflags(args: list[str], offsets: dict[str, int]) -> list[str]:
    """-D flags for the program: NAME=VALUE arguments (strings quoted) and structure offsets."""
    flags = [f"-D{key}={value}" for key, value in offsets.items()]
    for arg in args:
        key, _, value = arg.partition("=")
        flags.append(f"-D{key}={value}" if value.lstrip("-").isdigit() else f'-D{key}="{value}"')
    return flags


def main(argv: list[str]) -> int:
    # A flag, not KeyboardInterrupt: a signal that lands in a perf-buffer callback would raise
    # there, and ctypes swallows exceptions of callbacks. The shell that starts the runner in
    # the background leaves SIGINT ignored: handle SIGINT and SIGTERM explicitly.
    stop = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.append(True))
    from bcc import BPF

    program, args = Path(argv[1]), argv[2:]
    source = with_includes(program)
    text = program.with_name("events.h").read_text() + source
    offsets = btf_member_offsets(BTF.read_bytes(), MEMBERS)
    bpf = BPF(text=text, cflags=cflags(args, offsets))
    probes = bpf.num_open_kprobes() + bpf.num_open_tracepoints()
    print(f"Attaching {probes} probes...", flush=True)
    print("ATTACHED", flush=True)        # BPF() has attached them: wqkit waits for this line

    def on_event(_cpu, data, _size) -> None:
        ev = ctypes.cast(data, ctypes.POINTER(Event)).contents
        label, fields = LINES[ev.kind]
        # A work function's symbol, resolved now: its module may be gone by the end of the trace.
        symbol = BPF.ksym(ev.v[1]).decode() if ev.kind == 7 else ""
        print(label, fields.format(v=list(ev.v), pid=ev.pid, pool=ev.pool, cpu=ev.cpu, symbol=symbol,
                                   name=ev.name.decode(errors="replace")), flush=False)

    def on_lost(count: int) -> None:
        print(f"Lost {count} events", flush=False)      # said at once: the runner may not get to its end

    bpf["events"].open_perf_buffer(on_event, page_cnt=PAGES, lost_cb=on_lost)
    while not stop:
        bpf.perf_buffer_poll(200)
        sys.stdout.flush()
    bpf.perf_buffer_poll(0)
    for name in re.findall(r"BPF_HISTOGRAM\((\w+)", source):
        print_histogram(name, bpf[name])
    if "BPF_ARRAY(missed" in source:
        missed = sum(int(value.value) for value in bpf["missed"].values())
        if missed:
            print(f"Lost {missed} events (maps full)")
    sys.stdout.flush()
    return 0


def print_histogram(name: str, table) -> None:
    """A BPF_HISTOGRAM (slot k holds values in [2^(k-1), 2^k), 0 holds 0) in bpftrace's layout."""
    slots = {int(k.value): int(v.value) for k, v in table.items() if v.value}
    print(f"\n@{name}:")
    for slot in range(min(slots, default=0), max(slots, default=-1) + 1):
        low, high = (0, 1) if slot == 0 else (1 << (slot - 1), 1 << slot)
        count = slots.get(slot, 0)
        print(f"[{low}, {high}){count:>16} |{'@' * min(52, count)}|")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
