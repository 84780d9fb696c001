"""A small declarative validator for message fields.

Each field type checks one value and returns it normalised (defaults filled in); a violation raises
:class:`~dyntet_protocol.errors.ProtocolError` whose details say *which* field, *what* was expected
and *what* arrived, e.g. ``{"field": "params.start", "expected": "int ≥ 0", "got": "-3"}``.

>>> Record({"n": Int(min=1)}, defaults={"n": 1}).check({}, "params")
{'n': 1}
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .errors import ErrorCode, ProtocolError

MAX_INT = 2 ** 53
"""Integers beyond this are refused (they would not survive a JSON record or a float)."""


def describe_value(value: Any, width: int = 60) -> str:
    """A short, safe description of an untrusted value for error messages: never a full ``repr`` of a
    container (a deeply nested list would exhaust the recursion limit), strings cut to ``width``."""
    if isinstance(value, (list, tuple)):
        return f"list of {len(value)} item(s)"
    if isinstance(value, dict):
        return f"map of {len(value)} item(s)"
    if isinstance(value, np.ndarray):
        return f"array {value.dtype}{list(value.shape)}"
    if isinstance(value, (str, bytes)):
        text = repr(value[:width]) + ("…" if len(value) > width else "")
    else:
        text = repr(value)[:width]
    return f"{type(value).__name__} {text}"


_got = describe_value


def fail(where: str, expected: str, value: Any, code: ErrorCode = ErrorCode.BAD_REQUEST) -> ProtocolError:
    """The error for ``where`` holding ``value`` instead of ``expected``."""
    return ProtocolError(code, f"{where}: expected {expected}, got {_got(value)}",
                         {"field": where, "expected": expected, "got": _got(value)})


class Field:
    """Base of all field types."""

    def check(self, value: Any, where: str) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Str(Field):
    min_len: int = 0
    max_len: int = 256
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    """A regular expression the whole string must match."""

    def check(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise fail(where, self.describe(), value)
        if not self.min_len <= len(value) <= self.max_len:
            code = ErrorCode.TOO_LARGE if len(value) > self.max_len else ErrorCode.BAD_REQUEST
            raise fail(where, self.describe(), value, code)
        if self.choices is not None and value not in self.choices:
            raise fail(where, self.describe(), value)
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            raise fail(where, self.describe(), value)
        return value

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        text = f"string of {self.min_len}…{self.max_len} characters"
        return text + (f" matching {self.pattern}" if self.pattern else "")


@dataclass(frozen=True)
class Int(Field):
    min: int = -MAX_INT
    max: int = MAX_INT

    def check(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not self.min <= value <= self.max:
            raise fail(where, self.describe(), value)
        return value

    def describe(self) -> str:
        return f"integer in [{self.min}, {self.max}]"


@dataclass(frozen=True)
class Float(Field):
    min: float = -math.inf
    max: float = math.inf

    def check(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(where, self.describe(), value)
        number = float(value)
        if not math.isfinite(number) or not self.min <= number <= self.max:
            raise fail(where, self.describe(), value)
        return number

    def describe(self) -> str:
        return f"finite number in [{self.min}, {self.max}]"


@dataclass(frozen=True)
class Bool(Field):
    def check(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise fail(where, self.describe(), value)
        return value

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Bytes(Field):
    """Raw bytes (msgpack ``bin``), e.g. one chunk of an upload. Bytes-like values are accepted from local
    callers and returned as ``bytes``; a longer value is ``too_large`` (``details.limit``)."""

    max_len: int = 1024

    def check(self, value: Any, where: str) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise fail(where, self.describe(), value)
        data = value if isinstance(value, bytes) else bytes(value)
        if len(data) > self.max_len:
            raise ProtocolError(ErrorCode.TOO_LARGE, f"{where}: {len(data)} bytes exceed the limit of {self.max_len}",
                                {"field": where, "limit": self.max_len, "size": len(data)})
        return data

    def describe(self) -> str:
        return f"bytes (at most {self.max_len})"


@dataclass(frozen=True)
class Nullable(Field):
    inner: Field

    def check(self, value: Any, where: str) -> Any:
        return None if value is None else self.inner.check(value, where)

    def describe(self) -> str:
        return f"nil or {self.inner.describe()}"


@dataclass(frozen=True)
class ListOf(Field):
    item: Field
    max_len: int = 256

    def check(self, value: Any, where: str) -> list:
        if not isinstance(value, list):
            raise fail(where, self.describe(), value)
        if len(value) > self.max_len:
            raise fail(where, self.describe(), value, ErrorCode.TOO_LARGE)
        return [self.item.check(v, f"{where}[{i}]") for i, v in enumerate(value)]

    def describe(self) -> str:
        return f"list of at most {self.max_len} × ({self.item.describe()})"


@dataclass(frozen=True)
class Record(Field):
    """A map with known string keys. Keys in ``defaults`` are optional; all others are required.
    Unknown keys are refused (a misspelt option must not be ignored silently)."""

    fields: Mapping[str, Field]
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def check(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise fail(where, "map", value)
        unknown = [k for k in value if k not in self.fields]
        if unknown:
            names = ", ".join(repr(k)[:40] for k in unknown[:5])
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{where}: unknown field(s) {names}",
                                {"field": where, "unknown": [repr(k)[:40] for k in unknown[:5]],
                                 "allowed": sorted(self.fields)})
        out: dict[str, Any] = {}
        for name, spec in self.fields.items():
            if name in value:
                out[name] = spec.check(value[name], f"{where}.{name}")
            elif name in self.defaults:
                default = self.defaults[name]
                out[name] = default() if callable(default) else default
            else:
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"{where}: missing field {name!r}",
                                    {"field": f"{where}.{name}", "expected": spec.describe()})
        return out

    def describe(self) -> str:
        return "map with fields " + ", ".join(self.fields)


@dataclass(frozen=True)
class JsonValue(Field):
    """Free-form options (``overrides``, preprocess options): JSON-like values with bounded size.

    Allowed: nil, booleans, integers within ±2^53, finite floats, strings, lists and string-keyed maps.
    """

    max_depth: int = 6
    max_items: int = 256
    max_str_len: int = 4096

    def check(self, value: Any, where: str, depth: int = 0) -> Any:
        if depth > self.max_depth:
            raise fail(where, f"JSON value nested at most {self.max_depth} deep", value, ErrorCode.TOO_LARGE)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return Int().check(value, where)
        if isinstance(value, float):
            return Float().check(value, where)
        if isinstance(value, str):
            return Str(max_len=self.max_str_len).check(value, where)
        if isinstance(value, list):
            if len(value) > self.max_items:
                raise fail(where, f"list of at most {self.max_items} items", value, ErrorCode.TOO_LARGE)
            return [self.check(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
        if isinstance(value, dict):
            if len(value) > self.max_items:
                raise fail(where, f"map of at most {self.max_items} items", value, ErrorCode.TOO_LARGE)
            out = {}
            for k, v in value.items():
                if not isinstance(k, str) or not 0 < len(k) <= 128:
                    raise fail(f"{where} key", "string of 1…128 characters", k)
                out[k] = self.check(v, f"{where}.{k}", depth + 1)
            return out
        raise fail(where, "JSON-like value (nil, bool, number, string, list, map)", value)

    def describe(self) -> str:
        return "JSON-like value"


@dataclass(frozen=True)
class JsonMap(JsonValue):
    """A :class:`JsonValue` that must be a map at the top."""

    def check(self, value: Any, where: str, depth: int = 0) -> Any:
        if depth == 0 and not isinstance(value, dict):
            raise fail(where, "map", value)
        return super().check(value, where, depth)

    def describe(self) -> str:
        return "map of JSON-like values"


@dataclass(frozen=True)
class Array(Field):
    """A numeric array (msgpack ext type 1, ``docs/protocol.md`` §2) of a given rank, returned as float32.

    Why a field of its own: curves of control values travel as one array instead of lists of floats (a
    list of 25 × 1000 numbers would exceed the list limits and cost 9 bytes a number). Refused: any other
    value, integer or boolean dtypes, another rank, more than ``max_items`` elements, NaN or infinity.
    """

    ndim: int = 2
    max_items: int = 240_000
    dtypes: tuple[str, ...] = ("<f4", "<f8")

    def check(self, value: Any, where: str) -> np.ndarray:
        if not isinstance(value, np.ndarray) or value.dtype.str not in self.dtypes or value.ndim != self.ndim:
            raise fail(where, self.describe(), value)
        if value.size > self.max_items:
            raise fail(where, self.describe(), value, ErrorCode.TOO_LARGE)
        if not np.isfinite(value).all():
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{where}: holds NaN or infinite values",
                                {"field": where, "expected": "finite numbers", "got": describe_value(value)})
        return value.astype(np.float32)

    def describe(self) -> str:
        return f"{self.ndim}-d float array (dtype {' or '.join(self.dtypes)}, at most {self.max_items} elements)"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class RelPath(Field):
    """A workspace-relative path in canonical form: ``name/name/...`` with ``/`` separators.

    Refused (code ``path_refused``): absolute paths, drive letters and any ``:``, backslashes, control
    characters, empty / ``.`` / ``..`` components, components starting with ``.`` (hidden files, the
    server's own ``.dyntet`` folder) or ``~``. The server additionally resolves symlinks and refuses a
    path whose real location leaves the workspace. ``allow_root`` accepts ``""`` for the workspace itself.
    """

    max_len: int = 1024
    allow_root: bool = False

    def check(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise fail(where, self.describe(), value)
        if value == "" and self.allow_root:
            return value
        reason = path_problem(value, self.max_len)
        if reason is not None:
            raise ProtocolError(ErrorCode.PATH_REFUSED, f"{where}: path refused: {reason}",
                                {"field": where, "path": value[:200], "reason": reason})
        return value

    def describe(self) -> str:
        return "workspace-relative path like 'runs/anna'"


def path_problem(path: str, max_len: int = 1024) -> str | None:
    """Why ``path`` is not a canonical workspace-relative path, or ``None`` when it is."""
    if not path:
        return "empty path"
    if len(path) > max_len:
        return f"longer than {max_len} characters"
    if _CONTROL.search(path):
        return "contains control characters"
    if "\\" in path:
        return "contains a backslash (use '/')"
    if ":" in path:
        return "contains ':' (drive letters and streams are not allowed)"
    if path.startswith("/"):
        return "absolute path (must be relative to the workspace)"
    for part in path.split("/"):
        if part == "":
            return "empty component ('//' or a trailing '/')"
        if part in (".", ".."):
            return f"'{part}' component"
        if part.startswith("."):
            return f"hidden component {part[:40]!r}"
        if part.startswith("~"):
            return f"component starting with '~' ({part[:40]!r})"
        if len(part.encode("utf-8", "surrogatepass")) > 255:
            return "component longer than 255 bytes"
    return None
