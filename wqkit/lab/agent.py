"""The guest side of a lab session: runs shell commands sent by the host.

virtme-ng attaches this script's stdin and stdout to the host's pipes. The
host sends one JSON object per line (``{"id": N, "cmd": "...", "timeout": S}``);
the agent runs the command with ``/bin/sh -c``, kills its whole process group
when the timeout expires, and answers one line ``@wqkit {json}``. A request
``{"id": N, "socket": PATH, "line": "...", "timeout": S, "pid_file": F}``
instead sends one line to a guest unix-socket server (waiting for it to come
up, unless the process named in the optional pid file has exited) and
answers its reply line: no process to start, which costs seconds under TCG. Other output
on stdout is ignored by the host. EOF on stdin (the host went away) ends the
agent, which powers the guest off. Standard library only: it runs under the
guest's /usr/bin/python3.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

PREFIX = "@wqkit "


def reply(message: dict) -> None:
    sys.stdout.write(PREFIX + json.dumps(message) + "\n")
    sys.stdout.flush()


def read_text(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def run(cmd: str, timeout: float) -> dict:
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


def main() -> None:
    reply({
        "ready": True,
        "release": os.uname().release,
        "boot_id": read_text("/proc/sys/kernel/random/boot_id"),
        "uptime": float(read_text("/proc/uptime").split()[0]),
    })
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "exit":
            break
        if "socket" in request:
            result = ask(request["socket"], request["line"], float(request["timeout"]), request.get("pid_file"))
        else:
            result = run(request["cmd"], float(request["timeout"]))
        result["id"] = request["id"]
        reply(result)


if __name__ == "__main__":
    main()
