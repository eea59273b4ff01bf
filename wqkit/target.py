"""Where kernel-side steps run: the lab VM (default) or the running kernel.

Both targets offer the same small interface: the kernel release and Kbuild
directory, running a shell command as root, copying a file back to the host,
and file, module and kernel-log operations that start no process (a process
costs a quarter of a second under TCG). Module loading
(``wqkit.experiments.kmod``) is written once on top of it.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path
from shlex import quote
from typing import Iterator

from wqkit.command import CommandResult
from wqkit.errors import CommandTimeout, WqkitError
from wqkit.lab.agent import file_op
from wqkit.lab.agent import run as run_shell
from wqkit.lab.kept import attach
from wqkit.lab.kernel import LabKernel
from wqkit.lab.vm import LabSession

TARGETS = ("lab", "local")
#: How long a command or an operation may take on a target unless its caller says.
DEFAULT_TIMEOUT_S = 600.0


class Target(ABC):
    """A kernel that wqkit can build modules for and run commands on."""

    name: str
    #: Whether the target's kernel is the one this machine runs (what a module does there, it does here).
    runs_this_machine = False

    @property
    @abstractmethod
    def release(self) -> str:
        """``uname -r`` of the target kernel."""

    @property
    @abstractmethod
    def kbuild_dir(self) -> Path:
        """The Kbuild directory modules are built against (on the host)."""

    @property
    @abstractmethod
    def btf(self) -> Path:
        """A host file holding the kernel's BTF (its types): what BPF programs are compiled against."""

    @property
    @abstractmethod
    def accel(self) -> str:
        """How the target kernel runs: ``kvm``, ``tcg`` or ``bare metal``."""

    @property
    def alive(self) -> bool:
        """Whether commands can still run (a lab VM may have died)."""
        return True

    @abstractmethod
    def run(self, command: str, timeout: float = DEFAULT_TIMEOUT_S, check: bool = False) -> CommandResult:
        """Run a shell command as root on the target."""

    @abstractmethod
    def copy_back(self, path: str, dest: Path) -> Path:
        """Copy a file or directory of the target to ``dest`` on the host."""

    @abstractmethod
    def _file_op(self, request: dict, timeout: float) -> dict:
        """Run one of the agent's operations (wqkit.lab.agent.file_op) on the target."""

    def _op(self, request: dict, timeout: float = DEFAULT_TIMEOUT_S) -> dict:
        """The answer to ``request``; its error raised."""
        answer = self._file_op(request, timeout)
        if answer.get("error"):
            raise WqkitError(f"{request['op']} failed on the {self.name} target: {answer['error']}")
        return answer

    def read_files(self, paths: list[str] | tuple[str, ...]) -> list[str]:
        """Each file's text (procfs, sysfs and debugfs files included), in one request."""
        texts = []
        for text, error in self._op({"op": "read", "paths": list(paths)})["answers"]:
            if error:
                raise WqkitError(f"could not read {error} on the {self.name} target")
            texts.append(text)
        return texts

    def read_present(self, paths: list[str] | tuple[str, ...]) -> list[str | None]:
        """Each file's text, None for one that is not there (a node directory on a machine
        without NUMA), in one request."""
        return [None if error else text for text, error in self._op({"op": "read", "paths": list(paths)})["answers"]]

    def read(self, path: str) -> str:
        """A file's text."""
        return self.read_files([path])[0]

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists and can be opened for reading."""
        return self._op({"op": "exists", "paths": [path]})["answers"][0][0]

    def size(self, path: str) -> int:
        """A file's size in bytes (its growth, without reading it)."""
        size, error = self._op({"op": "size", "paths": [path]})["answers"][0]
        if error:
            raise WqkitError(f"could not stat {error} on the {self.name} target")
        return size

    def list_dir(self, path: str) -> list[str]:
        """The names in directory ``path``, sorted (``/proc``'s pids: no process started to list them)."""
        return self._op({"op": "list", "path": path})["names"]

    def read_dir(self, path: str) -> dict[str, str]:
        """The text of every file in directory ``path``, by name."""
        return self._op({"op": "read_dir", "path": path})["files"]

    def write(self, path: str, text: str, timeout: float = DEFAULT_TIMEOUT_S, create: bool = False) -> None:
        """Write ``text`` into ``path`` with one write(2) (a debugfs or sysfs control file, which
        must exist), or into a new or emptied file with ``create``."""
        self._op({"op": "write", "path": path, "text": text, "create": create}, timeout)

    def ensure_mounted(self, fstype: str, path: str) -> None:
        """Mount pseudo file system ``fstype`` (debugfs, tracefs) at ``path`` unless it is."""
        if not any(line.split()[1:3] == [path, fstype] for line in self.read("/proc/mounts").splitlines()):
            self.run(f"mount -t {fstype} {fstype} {path}", check=True)

    def load_module(self, ko: str, args: list[str], timeout: float = DEFAULT_TIMEOUT_S) -> str | None:
        """Load module file ``ko`` with ``args`` (finit_module, what insmod does); None, or why not
        (``timeout``: a module whose init runs a benchmark takes long)."""
        return self._file_op({"op": "load", "path": ko, "params": " ".join(args)}, timeout).get("error")

    def unload_module(self, name: str) -> str | None:
        """Unload module ``name`` (delete_module, what rmmod does); None, or why not."""
        return self._file_op({"op": "unload", "name": name}, DEFAULT_TIMEOUT_S).get("error")

    def kernel_log(self, since: int = 0) -> tuple[list[str], int]:
        """The kernel log's lines from record number ``since`` on, as dmesg prints them, and the
        number of the next record (a mark for a later call)."""
        answer = self._op({"op": "kmsg", "since": since})
        return [line for _, text in answer["records"] for line in text.split("\n")], answer["next"]

    @property
    @abstractmethod
    def exchange_dir(self) -> Path:
        """A host directory the target reads and writes at the same path: files too large or too
        binary for a command line (a fuzzer's inputs) go through it."""

    def close(self) -> None:
        """Release what the target holds (the lab VM)."""

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class LabTarget(Target):
    """The lab VM. Boots a session on first use unless one is given, or attaches to the
    kept lab (``wqkit lab up``) when it runs with the same options and ``use_kept`` is true."""

    name = "lab"

    def __init__(self, session: LabSession | None = None, use_kept: bool = True, **lab_options) -> None:
        self._owned = session is None
        if session is None and use_kept:
            session = attach(**lab_options)
        self.session = session if session is not None else LabSession(**lab_options)

    @property
    def kernel(self) -> LabKernel:
        return self.session.kernel

    @property
    def release(self) -> str:
        return self.kernel.release

    @property
    def kbuild_dir(self) -> Path:
        self.kernel.check_kbuild()
        return self.kernel.build_dir

    @property
    def btf(self) -> Path:
        self.kernel.check_debug_info()
        return self.kernel.debug_vmlinux           # its .BTF section (bpftool reads an ELF vmlinux)

    @property
    def accel(self) -> str:
        self._ensure_started()
        return self.session.accel

    @property
    def alive(self) -> bool:
        return self.session.alive

    def run(self, command: str, timeout: float = DEFAULT_TIMEOUT_S, check: bool = False) -> CommandResult:
        self._ensure_started()
        return self.session.run(command, timeout=timeout, check=check)

    def copy_back(self, path: str, dest: Path) -> Path:
        staged = self.session.shared_dir / f"copy-{os.getpid()}-{Path(path).name}"
        # cat, not cp: debugfs and procfs files report a size of 0.
        self.run(f"if [ -d {quote(path)} ]; then cp -a {quote(path)} {quote(str(staged))}; "
                 f"else cat {quote(path)} > {quote(str(staged))}; fi", check=True)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staged, dest)
        return dest

    def _file_op(self, request: dict, timeout: float) -> dict:
        self._ensure_started()
        return self.session.file_op(request, timeout)

    @property
    def exchange_dir(self) -> Path:
        self._ensure_started()
        return self.session.shared_dir

    def close(self) -> None:
        if self._owned:
            self.session.close()

    def _ensure_started(self) -> None:
        if not self.session.alive:
            self.session.start()


class LocalTarget(Target):
    """The kernel this machine runs. Refuses early what cannot work."""

    name = "local"
    runs_this_machine = True

    def __init__(self) -> None:
        # What root could not change is said first: a kernel without modules refuses anyone.
        if not Path("/proc/modules").exists():
            raise WqkitError(f"--target local: the running kernel {self.release} has no module support "
                             "(CONFIG_MODULES is off); use --target lab")
        if os.geteuid() != 0:
            raise WqkitError("--target local needs root (it loads kernel modules)")
        self._exchange: Path | None = None

    @property
    def release(self) -> str:
        return platform.release()

    @property
    def kbuild_dir(self) -> Path:
        build = Path(f"/lib/modules/{self.release}/build")
        if not (build / "Makefile").exists():
            raise WqkitError(f"--target local: no Kbuild directory at {build}; "
                             f"install the headers of {self.release}")
        return build

    @property
    def btf(self) -> Path:
        btf = Path("/sys/kernel/btf/vmlinux")
        if not btf.is_file():
            raise WqkitError(f"--target local: {self.release} has no {btf} (CONFIG_DEBUG_INFO_BTF is off): "
                             "the bcc engine's programs are compiled against it; use --engine bpftrace")
        return btf

    @property
    def accel(self) -> str:
        return "bare metal"

    def run(self, command: str, timeout: float = DEFAULT_TIMEOUT_S, check: bool = False) -> CommandResult:
        answer = run_shell(command, timeout)
        if answer["timed_out"]:
            raise CommandTimeout(f"`{command}` still ran after {timeout:g} s and was killed")
        result = CommandResult.from_agent(command, answer)
        return result.check("the local kernel") if check else result

    def _file_op(self, request: dict, timeout: float) -> dict:
        return file_op(request)

    @property
    def exchange_dir(self) -> Path:
        if self._exchange is None:
            self._exchange = Path(tempfile.mkdtemp(prefix="wqkit-local-"))
        return self._exchange

    def close(self) -> None:
        if self._exchange is not None:
            shutil.rmtree(self._exchange, ignore_errors=True)
            self._exchange = None

    def copy_back(self, path: str, dest: Path) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if Path(path).is_dir():
            shutil.copytree(path, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(path, dest)
        return dest


def make_target(name: str, **lab_options) -> Target:
    """The target called ``name`` (``lab`` or ``local``)."""
    if name == "lab":
        return LabTarget(**lab_options)
    if name == "local":
        return LocalTarget()
    raise WqkitError(f"unknown target {name!r}: choose one of {', '.join(TARGETS)}")


@contextmanager
def given_or_made(target: Target | None, name: str, **lab_options) -> Iterator[Target]:
    """``target`` when the caller has one open (a notebook's lab session, left open), otherwise
    the target called ``name``, made for the block and closed after it."""
    if target is not None:
        yield target
        return
    with make_target(name, **lab_options) as made:
        yield made
