"""Reading a JSON answer field by field, or a precise ``schema-drift``.

``parse(endpoint, body)`` gives a :class:`Reader` at ``$``; ``r["items"]`` goes down to
``$.items`` (a missing key is not an error yet), ``r.items()`` to each element
(``$.items[3]``), and the typed accessors (``.str()``, ``.int()``, ``.timestamp()``…)
either return the value or raise :class:`Failure` ``schema-drift`` naming the endpoint,
the path, what was expected and the JSON kind found (``missing``, ``null``,
``string``…) — never the value itself: it could be patient data."""

import json
from typing import Any, List, Optional, Sequence, Tuple

from .errors import Failure
from .time import Timestamp

_MISSING = object()


def kind(value: Any) -> str:
    """The JSON kind of a value, as drift reports name it."""
    if value is _MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _join(base: str, key: str) -> str:
    """``base.key`` for an identifier, else ``base['key']`` (as the Rust SDK writes)."""
    if key and (key[0].isascii() and (key[0].isalpha() or key[0] == "_")) and all(
        c.isascii() and (c.isalnum() or c == "_") for c in key
    ):
        return f"{base}.{key}"
    quoted = key.replace("\\", "\\\\").replace("'", "\\'")
    return f"{base}['{quoted}']"


class Reader:
    """A value of a JSON answer and where it is."""

    def __init__(self, endpoint: str, value: Any, path: str = "$"):
        self.endpoint, self.value, self.path = endpoint, value, path

    def drift(self, expected: str) -> Failure:
        return Failure.drift(self.endpoint, self.path, expected, kind(self.value))

    def __getitem__(self, key: str) -> "Reader":
        if not isinstance(self.value, dict):
            raise self.drift("an object")
        return Reader(self.endpoint, self.value.get(key, _MISSING), _join(self.path, key))

    def present(self) -> bool:
        """Whether there is a non-null value here."""
        return self.value is not _MISSING and self.value is not None

    def items(self) -> List["Reader"]:
        if not isinstance(self.value, list):
            raise self.drift("an array")
        return [Reader(self.endpoint, v, f"{self.path}[{i}]") for i, v in enumerate(self.value)]

    def str(self) -> str:
        if not isinstance(self.value, str):
            raise self.drift("a string")
        return self.value

    def int(self) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise self.drift("an integer")
        return self.value

    def bool(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.drift("a boolean")
        return self.value

    def timestamp(self) -> Timestamp:
        t = Timestamp.parse(self.value) if isinstance(self.value, str) else None
        if t is None:
            raise self.drift("an RFC 3339 date-time with an offset")
        return t

    def opt_str(self) -> Optional[str]:
        return self.str() if self.present() else None

    def nullable(self) -> Optional["Reader"]:
        """A field that must be present but may be null: None for null, this reader
        for a value, ``schema-drift`` (found ``missing``) when absent — a renamed field
        is seen, not read as null."""
        if self.value is _MISSING:
            raise self.drift("a value or null")
        return None if self.value is None else self

    def union(self, shapes: Sequence[Tuple[str, Sequence[str]]]) -> List[Tuple[str, "Reader"]]:
        """A list whose items come in several shapes, told apart by their members
        (``[("slot", ["start", "end"]), ("trailer", ["total"])]``): each item with the
        name of the first shape whose members it all has. An item of no shape is
        ``schema-drift`` at its path, expecting the shapes by name."""
        out = []
        for item in self.items():
            found = next((name for name, members in shapes
                          if isinstance(item.value, dict) and all(m in item.value for m in members)),
                         None)
            if found is None:
                raise item.drift("one of: " + ", ".join(
                    f"{name} ({', '.join(members)})" for name, members in shapes))
            out.append((found, item))
        return out


def parse(endpoint: str, body: bytes) -> Reader:
    """The answer's JSON at ``$``; a body that is not JSON is drift at ``$``."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Failure.drift(endpoint, "$", "a JSON document", "not JSON")
    return Reader(endpoint, value)
