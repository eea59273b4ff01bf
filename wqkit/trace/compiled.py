"""The bcc engine's programs, built on the host at native speed for the traced kernel.

Each ``bcc/NAME.c`` is built the way BCC's own libbpf-tools are: clang
compiles it into a BPF CO-RE object against ``vmlinux.h``, the traced
kernel's types that bpftool dumps from its BTF (the lab kernel's debug
vmlinux, or ``/sys/kernel/btf/vmlinux``). In the target, ``bcc/load.c``,
built once by the host's C compiler against libbpf, sets the program's
parameters, loads it (libbpf relocates it against the running kernel's
BTF) and attaches it: nothing is compiled there. Under TCG BCC's own
in-guest compile took about 30 s before a program was attached; the loader
takes under a second.

Objects are cached per program source, kernel BTF and compiler; parameters
are set at load time, so a new value needs no new build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

from wqkit.errors import WqkitError
from wqkit.paths import build_atomically, cache_dir, write_atomically

BCC_DIR = Path(__file__).parent / "bcc"
LOADER_SOURCE = BCC_DIR / "load.c"
LOADER_FLAGS = ("-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror")
#: -fms-extensions as the kernel has built with since 6.19: its structs embed others without a
#: member name (struct ns_common's ``struct ns_tree;`` in 7.x), which bpftool dumps as written.
BPF_FLAGS = ("-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-Wall", "-Werror", "-fms-extensions",
             "-Wno-microsoft-anon-tag")
#: Where the tools are: bpftool is in /usr/sbin, which an ordinary user's PATH may not hold.
TOOL_PATH = os.pathsep.join((os.environ.get("PATH", ""), "/usr/sbin", "/sbin"))
#: A BTF file smaller than this is hashed whole for its cache key; a larger one (a vmlinux with
#: DWARF, hundreds of MB) is keyed by its path, size and mtime.
HASHED_BTF_BYTES = 64 << 20


def _tool(name: str, package: str) -> str:
    found = shutil.which(name, path=TOOL_PATH)
    if found is None:
        raise WqkitError(f"the bcc engine needs {name} on the host: run `make setup` ({package})")
    return found


def _digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def _btf_key(btf: Path) -> str:
    stat = btf.stat()
    if stat.st_size and stat.st_size < HASHED_BTF_BYTES:
        return _digest(btf.read_bytes())
    return _digest(str(btf.resolve()).encode(), str(stat.st_size).encode(), str(stat.st_mtime_ns).encode())


@cache
def _compiler_version(compiler: str) -> bytes:
    """What ``compiler --version`` says, asked once per process (it is part of every cache key)."""
    return subprocess.run([compiler, "--version"], capture_output=True).stdout


def loader() -> Path:
    """The loader, built now if it is not yet (a fraction of a second)."""
    compiler = _tool("cc", "build-essential")
    key = _digest(LOADER_SOURCE.read_bytes(), (BCC_DIR / "events.h").read_bytes(), " ".join(LOADER_FLAGS).encode(),
                  _compiler_version(compiler))
    return build_atomically(cache_dir() / "bpf" / "loader" / key / "load",
                            lambda out: [compiler, *LOADER_FLAGS, f"-I{BCC_DIR}", "-o", str(out),
                                         str(LOADER_SOURCE), "-lbpf"],
                            "the bcc engine's loader (libbpf-dev)")


def vmlinux_header(btf: Path) -> Path:
    """``vmlinux.h`` for the kernel whose BTF is ``btf``, dumped once per kernel."""
    bpftool = _tool("bpftool", "bpftool")
    header = cache_dir() / "bpf" / _btf_key(btf) / "vmlinux.h"
    if not header.is_file():
        dump = subprocess.run([bpftool, "btf", "dump", "file", str(btf), "format", "c"], capture_output=True, text=True)
        if dump.returncode != 0:
            raise WqkitError(f"bpftool could not read the BTF of {btf}: "
                             f"{(dump.stderr.strip() or 'no output').splitlines()[-1]}")
        header.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(header, dump.stdout)
    return header


def bpf_object(source: Path, btf: Path) -> Path:
    """The CO-RE object of the program ``source`` for the kernel whose BTF is ``btf``, built now
    if it is not yet (about a second). A program that does not compile against that kernel (a
    tracepoint it does not have) is a one-line error with clang's first one."""
    clang = _tool("clang", "clang")
    header = vmlinux_header(btf)
    sources = b"".join(path.read_bytes() for path in sorted(BCC_DIR.glob("*.h"))) + source.read_bytes()
    key = _digest(sources, " ".join(BPF_FLAGS).encode(), _compiler_version(clang))
    return build_atomically(header.parent / f"{source.stem}-{key}.o",
                            lambda out: [clang, *BPF_FLAGS, f"-I{header.parent}", f"-I{BCC_DIR}",
                                         f"-I{source.parent}", "-c", str(source), "-o", str(out)],
                            f"{source.name} for this kernel")
