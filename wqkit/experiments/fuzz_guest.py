#!/usr/bin/python3 -IS
"""Feed graph texts to a loaded wq_kserver's ``trial`` file, one after the other, on the target.

Run by wqkit.experiments.graph_fuzz as ``python3 -IS fuzz_guest.py INPUTS RESULTS`` (standard
library only: it runs on the target's Python). INPUTS holds records of
``<u32 size><u8 writes><size bytes>``: each text is written to ``graph`` in
that many write() calls, then ``1`` to ``trial`` (the module checks the graph,
runs it once and checks the order its tasks ran in). RESULTS gets one line per
input: the errno name of the write that failed (empty when the module accepted
the text and ran it), how many kernel log lines the module printed for it (read from
/dev/kmsg after each input; -1 if the log overran), the first of them, and, for an
accepted text, what the module's ``parsed`` file reads back (its lines joined by ``|``).
The console's log level is lowered meanwhile, so that thousands of refusals
do not go through the emulated serial port one character at a time.
"""

import errno
import os
import struct
import sys

GRAPH_DIR = "/sys/kernel/debug/wqkit_kserver"
MODULE_PREFIX = "wq_kserver: "
PRINTK = "/proc/sys/kernel/printk"


def write_all(path: str, data: bytes, writes: int) -> str:
    """Write ``data`` to ``path`` in ``writes`` calls; the errno name of a failure, else ''."""
    fd = os.open(path, os.O_WRONLY)
    try:
        step = max(1, -(-len(data) // max(writes, 1)))
        for start in range(0, len(data), step):
            chunk = memoryview(data)[start:start + step]
            while chunk:
                chunk = chunk[os.write(fd, chunk):]
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    finally:
        os.close(fd)
    return ""


def module_lines(kmsg: int) -> tuple[int, str]:
    """The module's kernel log records since the last call: how many, and the first."""
    count, first = 0, ""
    while True:
        try:
            record = os.read(kmsg, 8192).decode(errors="replace")
        except BlockingIOError:
            return count, first
        except BrokenPipeError:         # records were overwritten before we read them
            return -1, first
        message = record.split(";", 1)[-1].split("\n", 1)[0]
        if message.startswith(MODULE_PREFIX):
            count += 1
            first = first or message


def main(inputs: str, results: str) -> None:
    data = open(inputs, "rb").read()
    kmsg = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    os.lseek(kmsg, 0, os.SEEK_END)
    levels = open(PRINTK).read().split()
    with open(PRINTK, "w") as printk:
        printk.write("1")
    try:
        with open(results, "w") as out:
            offset = 0
            while offset < len(data):
                size, writes = struct.unpack_from("<IB", data, offset)
                text = data[offset + 5:offset + 5 + size]
                offset += 5 + size
                error = write_all(f"{GRAPH_DIR}/graph", text, writes) or write_all(f"{GRAPH_DIR}/trial", b"1", 1)
                count, first = module_lines(kmsg)
                parsed = "" if error else open(f"{GRAPH_DIR}/parsed").read().strip().replace("\n", "|")
                out.write(f"{error}\t{count}\t{first.replace(chr(9), ' ')}\t{parsed}\n")
    finally:
        with open(PRINTK, "w") as printk:
            printk.write(levels[0])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
