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

import drgn
from drgn import Program, TypeKind, offsetof, sizeof

_INTEGERS = {1: "b", 2: "h", 4: "i", 8: "q"}


def _format(type_: drgn.Type) -> str:
    """The struct-module format of a scalar, pointer or char/integer array type."""
    t = type_.unaliased()
    if t.kind == TypeKind.POINTER:
        return "Q"
    if t.kind == TypeKind.ENUM:
        t = t.type
    if t.kind in (TypeKind.INT, TypeKind.BOOL):
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

    ``fields`` maps a result name to a member designator (``"pwqs.next"``).
    """

    def __init__(self, prog: Program, type_name: str, fields: dict[str, str]) -> None:
        self.prog = prog
        self.type = prog.type(type_name)
        self.size = sizeof(self.type)
        self.missing: list[str] = []
        self._fields: list[tuple[str, int, struct.Struct, bool]] = []
        for name, designator in fields.items():
            member_type = self._member_type(designator)
            if member_type is None:
                self.missing.append(f"{type_name.split()[-1]}.{designator}")
                continue
            fmt = _format(member_type)
            self._fields.append((name, offsetof(self.type, designator), struct.Struct("<" + fmt),
                                 fmt[0].isdigit() and not fmt.endswith("s")))
        self._absent = {name: None for name in fields if name not in {f[0] for f in self._fields}}
        # Read only the span that holds the wanted fields: under TCG every byte copied costs.
        self._start = min((offset for _, offset, _, _ in self._fields), default=0)
        self._length = max((offset + codec.size for _, offset, codec, _ in self._fields), default=0) - self._start
        self._fields = [(name, offset - self._start, codec, is_array)
                        for name, offset, codec, is_array in self._fields]

    def _member_type(self, designator: str) -> drgn.Type | None:
        t = self.type
        for part in designator.split("."):
            t = t.unaliased()
            if not t.has_member(part):
                return None
            t = t.member(part).type
        return t

    def offset(self, designator: str) -> int:
        return offsetof(self.type, designator)

    def read(self, address: int) -> dict:
        """The fields of the structure at ``address``, from one read of kernel memory."""
        raw = self.prog.read(address + self._start, self._length)
        values = dict(self._absent)
        for name, offset, codec, is_array in self._fields:
            decoded = codec.unpack_from(raw, offset)
            values[name] = decoded if is_array else decoded[0]
        return values


def cstr(raw: bytes) -> str:
    """A NUL-terminated char array as text."""
    return raw.split(b"\0", 1)[0].decode(errors="replace")
