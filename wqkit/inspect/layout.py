"""Decoding raw copies of kernel structures with :mod:`struct`, laid out from debug info.

drgn Objects are convenient but each member access builds a new Object; on a
live kernel under TCG that Python work dominates a snapshot. A
:class:`StructLayout` takes the offsets and types of the few fields wanted
from the kernel's own debug info once, then decodes one ``prog.read()`` of
the structure with ``struct.unpack_from``. A field that this kernel does not
have decodes as None and is reported as missing.
"""

from __future__ import annotations

import struct
from typing import Callable

import drgn
from drgn import Program, TypeKind, offsetof, sizeof

_INTEGERS = {1: "b", 2: "h", 4: "i", 8: "q"}
#: Fields further apart than this many bytes are read separately rather than
#: copied across: under TCG one read of /proc/kcore costs about 3 µs and each
#: further KB about 4 µs, plus the Python work of another read.
MAX_GAP = 1024


def _format(type_: drgn.Type) -> str:
    """The struct-module format of a scalar, pointer or char/integer array type."""
    t = type_.unaliased()
    if t.kind == TypeKind.POINTER:
        return "Q"
    if t.kind == TypeKind.ENUM:
        t = t.type
    if t.kind == TypeKind.BOOL:
        return _INTEGERS[t.size].upper()
    if t.kind == TypeKind.INT:
        code = _INTEGERS[t.size]
        return code if t.is_signed else code.upper()
    if t.kind == TypeKind.ARRAY:
        element = t.type.unaliased()
        if element.kind == TypeKind.INT and element.size == 1:
            return f"{t.length}s"
        return f"{t.length}{_format(element)}"
    if t.kind == TypeKind.STRUCT and len(t.members) == 1:   # atomic_t and friends
        return _format(t.members[0].type)
    raise TypeError(f"no struct format for {t}")


class StructLayout:
    """Some fields of one kernel struct, decodable from a raw copy.

    ``fields`` maps a result name to a member designator (``"pwqs.next"``),
    or to a tuple of designators of which the first this kernel has is read.
    All fields are decoded by a single ``struct`` format with padding between
    them, from one read of the span that holds them.
    """

    def __init__(self, prog: Program, type_name: str, fields: dict[str, str | tuple[str, ...]]) -> None:
        self.prog = prog
        self.type = prog.type(type_name)
        self.size = sizeof(self.type)
        self.missing: list[str] = []
        self._offsets: dict[str, int] = {}
        present = []   # (offset, name, format)
        for name, designators in fields.items():
            # A tuple names the member as it was called across kernel versions.
            designators = (designators,) if isinstance(designators, str) else designators
            found = [(d, t) for d, t in ((d, self._member_type(d)) for d in designators) if t is not None]
            if found:
                designator, member_type = found[0]
                present.append((offsetof(self.type, designator), name, _format(member_type)))
            else:
                self.missing.append(f"{type_name.split()[-1]}.{designators[0]}")
        present.sort()
        self._absent = {name: None for name in fields if name not in {n for _, n, _ in present}}
        self._arrays: dict[str, Callable[[bytes], tuple[int, ...]]] = {}
        # Read only the spans that hold the wanted fields (see MAX_GAP).
        self._reads: list[tuple[int, struct.Struct, tuple[str, ...]]] = []
        cluster: list[tuple[int, str, str]] = []
        for field in present:
            if cluster and field[0] - self._end(cluster[-1]) > MAX_GAP:
                self._reads.append(self._compile(cluster))
                cluster = []
            cluster.append(field)
        if cluster:
            self._reads.append(self._compile(cluster))
        #: read(address) -> the fields of the structure at ``address`` (a dict), one read per span.
        self.read = self._reader()

    @staticmethod
    def _end(field: tuple[int, str, str]) -> int:
        return field[0] + struct.calcsize("<" + field[2])

    def _compile(self, cluster: list[tuple[int, str, str]]) -> tuple[int, struct.Struct, tuple[str, ...]]:
        """One read: its start offset, a struct with padding between fields, and the field names.

        Arrays of integers are copied as bytes here and unpacked by their own
        struct afterwards, so every field is one item of the unpacked tuple.
        """
        fmt, position, names = "<", cluster[0][0], []
        for offset, name, field_fmt in cluster:
            if offset > position:
                fmt += f"{offset - position}x"
            if field_fmt[0].isdigit() and not field_fmt.endswith("s"):
                self._arrays[name] = struct.Struct("<" + field_fmt).unpack
                fmt += f"{struct.calcsize('<' + field_fmt)}s"
            else:
                fmt += field_fmt
            names.append(name)
            position = self._end((offset, name, field_fmt))
        return cluster[0][0], struct.Struct(fmt), tuple(names)

    def _member_type(self, designator: str) -> drgn.Type | None:
        t = self.type
        for part in designator.split("."):
            t = t.unaliased()
            if not t.has_member(part):
                return None
            t = t.member(part).type
        return t

    def offset(self, designator: str) -> int:
        """offsetof(), cached: drgn computes it anew each call."""
        if designator not in self._offsets:
            self._offsets[designator] = offsetof(self.type, designator)
        return self._offsets[designator]

    def _reader(self) -> Callable[[int], dict]:
        """The decoder of this layout, as a closure over local names.

        Decoding is one ``unpack`` and one ``zip`` per span: under TCG, a
        Python loop over the fields, or even attribute look-ups, cost more than
        the read of kernel memory itself.
        """
        prog_read, absent, arrays = self.prog.read, self._absent, tuple(self._arrays.items())
        reads = [(start, codec.unpack, codec.size, names) for start, codec, names in self._reads]
        if len(reads) == 1 and not absent and not arrays:
            ((start, unpack, size, names),) = reads
            return lambda address: dict(zip(names, unpack(prog_read(address + start, size))))

        def read(address: int) -> dict:
            values = dict(absent)
            for start, unpack, size, names in reads:
                values.update(zip(names, unpack(prog_read(address + start, size))))
            for name, unpack_array in arrays:
                values[name] = unpack_array(values[name])
            return values
        return read


def cstr(raw: bytes) -> str:
    """A NUL-terminated char array as text."""
    return raw.split(b"\0", 1)[0].decode(errors="replace")
