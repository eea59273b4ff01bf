"""The guest side of a lab session: runs shell commands sent by the host.

virtme-ng attaches this script's stdin and stdout to the host's pipes. The
host sends one JSON object per line (``{"id": N, "cmd": "...", "timeout": S}``);
the agent runs the command with ``/bin/sh -c``, kills its whole process group
when the timeout expires, and answers one line ``@wqkit {json}``. A request
``{"id": N, "socket": PATH, "line": "...", "timeout": S, "pid_file": F}``
instead sends one line to a guest unix-socket server (waiting for it to come
up, unless the process named in the optional pid file has exited) and
answers its reply line. A request ``{"id": N, "op": ...}`` reads or writes files, loads or
unloads a module, or reads the kernel log (:func:`file_op`), in the agent itself. Neither
starts a process, which costs a quarter of a second under TCG. Other output on stdout is
ignored by the host. EOF on stdin (the host went away) ends the
agent, which powers the guest off. Standard library only: it runs under the
guest's /usr/bin/python3, started from one file of its code and imports
(agent_start.py). What only some requests need (subprocess, socket, ctypes) is
imported at their first use: its import at the start would delay every boot's first answer.
"""

import json
import os
import re
import sys
import time

PREFIX = "@wqkit "


def reply(message: dict) -> None:
    sys.stdout.write(PREFIX + json.dumps(message) + "\n")
    sys.stdout.flush()


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:     # its codec is loaded at the interpreter's start, ascii's is not
        return f.read().strip()


def run(cmd: str, timeout: float) -> dict:
    import signal
    import subprocess

    start = time.monotonic()
    proc = subprocess.Popen(
        ["/bin/sh", "-c", cmd],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return {
        "returncode": proc.returncode,
        "stdout": out.decode(errors="replace"),
        "stderr": err.decode(errors="replace"),
        "seconds": time.monotonic() - start,
        "timed_out": timed_out,
    }


def exited(pid_file: str | None) -> str | None:
    """The pid of the server named in ``pid_file`` if it has exited, else None."""
    try:
        pid = read_text(pid_file) if pid_file else ""
    except OSError:
        return None
    return pid if pid and not os.path.exists(f"/proc/{pid}") else None


def ask(path: str, line: str, timeout: float, pid_file: str | None = None) -> dict:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(max(0.1, deadline - time.monotonic()))
                conn.connect(path)
                with conn.makefile("rw") as stream:
                    stream.write(line + "\n")
                    stream.flush()
                    return {"reply": stream.readline()}
        except (FileNotFoundError, ConnectionRefusedError):
            pid = exited(pid_file)
            if pid:
                return {"error": f"the server of {path} (pid {pid}) has exited"}
            if time.monotonic() > deadline:
                return {"error": f"no server on {path} after {timeout:g} s", "timed_out": True}
            time.sleep(0.2)
        except socket.timeout:
            return {"error": f"no reply from {path} within {timeout:g} s", "timed_out": True}
        except OSError as exc:
            return {"error": f"{path}: {exc.strerror or exc}"}


#: x86-64 system call numbers (wqkit reads the TSC: its targets are x86-64).
SYS_DELETE_MODULE, SYS_FINIT_MODULE = 176, 313
#: /dev/kmsg escapes a message's non-printable bytes, and backslashes, as \xNN.
KMSG_ESCAPE = re.compile(rb"\\x([0-9a-f]{2})")


def syscall(number: int, *args) -> int:
    """Make a system call; 0 or its errno."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return 0 if libc.syscall(number, *args) == 0 else ctypes.get_errno()


def load_module(path: str, params: str) -> int:
    """finit_module(2), what insmod does; 0 or the errno."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return syscall(SYS_FINIT_MODULE, fd, params.encode(), 0)
    finally:
        os.close(fd)


def unload_module(name: str) -> int:
    """delete_module(2) with O_NONBLOCK, what rmmod does; 0 or the errno."""
    return syscall(SYS_DELETE_MODULE, name.encode(), os.O_NONBLOCK)


def _unescaped(escape: re.Match) -> bytes:
    """An escaped byte as dmesg shows it: itself, but for control characters other than tab and
    newline, and DEL, which stay escaped."""
    byte = int(escape.group(1), 16)
    return escape.group(0) if byte == 0x7f or (byte < 0x20 and byte not in (0x09, 0x0a)) else bytes([byte])


def kmsg_record(record: bytes) -> tuple[int, str]:
    """A /dev/kmsg record's number and its message as dmesg prints it: ``[seconds.µs] text``,
    escapes undone (a message's own newlines and UTF-8 included), later lines indented under
    the first, its dictionary left out."""
    prefix, _, text = record.partition(b";")
    fields = prefix.split(b",")
    seq, usec = int(fields[1]), int(fields[2])
    message = KMSG_ESCAPE.sub(_unescaped, text.split(b"\n", 1)[0])
    stamp = f"[{usec // 1000000:5d}.{usec % 1000000:06d}] "
    # dmesg indents a message's later lines under its first line's text.
    return seq, stamp + message.decode(errors="replace").replace("\n", "\n" + " " * len(stamp))


def kmsg_records(since: int) -> tuple[list[list], int]:
    """The kernel log records numbered ``since`` or later, as ``[seq, text]`` with text as
    dmesg prints it (``[seconds.µs] message``), and the number the next record will get."""
    records, next_seq = [], 0
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        while True:
            try:
                record = os.read(fd, 8192)
            except BlockingIOError:
                break
            except BrokenPipeError:     # overwritten while read: the next read gives the oldest kept
                continue
            seq, text = kmsg_record(record)
            next_seq = seq + 1
            if seq >= since:
                records.append([seq, text])
    finally:
        os.close(fd)
    return records, next_seq


def file_op(request: dict) -> dict:
    """One operation without a process: ``read`` (``paths``: each file's text, or its error),
    ``exists`` (``paths``), ``size`` (``paths``: each file's size in bytes), ``list`` (the
    names in directory ``path``), ``read_dir`` (every file of ``path``), ``write`` (``text``
    into ``path``, in as few write(2) calls as the file takes; a new file with ``create``),
    ``load`` (module ``path`` with ``params``), ``unload`` (module ``name``), ``kmsg`` (the
    kernel log from record ``since``). A failure answers ``error`` and ``errno``."""
    op = request["op"]
    try:
        if op in ("read", "exists", "size"):
            answers = []
            for path in request["paths"]:
                try:
                    if op == "size":
                        answers.append([os.stat(path).st_size, None])
                        continue
                    with open(path, "rb") as f:
                        answers.append([f.read().decode(errors="replace") if op == "read" else True, None])
                except OSError as exc:
                    answers.append([False if op == "exists" else None, f"{path}: {exc.strerror}"])
            return {"answers": answers}
        if op == "list":
            return {"names": sorted(os.listdir(request["path"]))}
        if op == "read_dir":
            files = {}
            for name in sorted(os.listdir(request["path"])):
                with open(os.path.join(request["path"], name), "rb") as f:
                    files[name] = f.read().decode(errors="replace")
            return {"files": files}
        if op == "write":
            create = os.O_CREAT | os.O_TRUNC if request.get("create") else 0
            fd = os.open(request["path"], os.O_WRONLY | os.O_CLOEXEC | create, 0o644)
            try:
                data = memoryview(request["text"].encode())
                while data:
                    data = data[os.write(fd, data):]
            finally:
                os.close(fd)
            return {}
        if op in ("load", "unload"):
            errno = (load_module(request["path"], request["params"]) if op == "load"
                     else unload_module(request["name"]))
            return {"error": os.strerror(errno), "errno": errno} if errno else {}
        if op == "kmsg":
            records, next_seq = kmsg_records(int(request["since"]))
            return {"records": records, "next": next_seq}
    except OSError as exc:
        return {"error": f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror}", "errno": exc.errno}
    return {"error": f"unknown operation {op!r} (a kept lab booted with an older wqkit? `wqkit lab down`)",
            "errno": 0}


def vmcoreinfo_paddr() -> int | None:
    """Where the kernel keeps its VMCOREINFO note (guest-physical), for the host's readers of guest RAM."""
    try:
        return int(read_text("/sys/kernel/vmcoreinfo").split()[0], 16)
    except (OSError, ValueError, IndexError):
        return None


#: Seconds the agent waits for the init's set-up before it answers anyway (the host then sees what is missing).
INIT_WAIT_S = 120.0


def wait_for_init() -> None:
    """Wait until the guest's init has finished its set-up (the file it names in WQKIT_INIT_DONE):
    the init starts the agent early, so that Python's start overlaps the modules loading."""
    done = os.environ.get("WQKIT_INIT_DONE")
    deadline = time.monotonic() + INIT_WAIT_S
    while done and not os.path.exists(done) and time.monotonic() < deadline:
        time.sleep(0.005)


def main() -> None:
    wait_for_init()
    reply({
        "ready": True,
        "release": os.uname().release,
        "boot_id": read_text("/proc/sys/kernel/random/boot_id"),
        "uptime": float(read_text("/proc/uptime").split()[0]),
        "vmcoreinfo": vmcoreinfo_paddr(),
    })
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "exit":
            break
        if "socket" in request:
            result = ask(request["socket"], request["line"], float(request["timeout"]), request.get("pid_file"))
        elif "cmd" in request:
            result = run(request["cmd"], float(request["timeout"]))
        else:
            result = file_op(request)
        result["id"] = request["id"]
        reply(result)


if __name__ == "__main__":
    main()
