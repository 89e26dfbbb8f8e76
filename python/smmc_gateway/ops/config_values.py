"""Value checkers for the gateway configuration: each one names the key path, the bad
value and what is allowed, and records the problem instead of raising, so that
`load_config` can report every problem in one go.

A TOML table arrives here as a ``Table`` (``dict[str, object]``); each checker takes the
key path of the value (``meters[3].connection.port``) for its messages.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

Table = dict[str, object]

_MISSING = object()


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem: where (key path, or file:line for CSV) and what is wrong."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


@dataclass(slots=True)
class Problems:
    """Collects problems; checkers return a default so validation can carry on."""

    items: list[ConfigProblem] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.items.append(ConfigProblem(where, message))


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def show(value: object) -> str:
    """A value as it would be written in TOML, for messages (short)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = repr(value) if len(value) <= 60 else repr(value[:57] + "...")
        return '"' + text[1:-1] + '"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


def suggest(word: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(allowed), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def check_keys(table: Table, path: str, allowed: Iterable[str], probs: Problems) -> None:
    """Unknown keys are errors, with a did-you-mean when one is close."""
    allowed_list = list(allowed)
    for key in table:
        if key not in allowed_list and key in ("include", "meters_csv") and path:
            probs.add(
                join(path, key),
                f"{key} is a top-level key: move it above the first "
                "[table] of the file (TOML puts it in the table above it)",
            )
        elif key not in allowed_list:
            probs.add(
                join(path, key),
                f"unknown key{suggest(key, allowed_list)}; allowed: {', '.join(allowed_list)}",
            )


def table(value: object, path: str, probs: Problems) -> Table:
    if value is _MISSING or value is None:
        return {}
    if not isinstance(value, dict):
        probs.add(path, f"{show(value)} is not a table")
        return {}
    return value


def get_int(t: Table, key: str, path: str, probs: Problems, default: int, lo: int, hi: int) -> int:
    value = t.get(key, _MISSING)
    if value is _MISSING:
        return default
    where = join(path, key)
    if isinstance(value, bool) or not isinstance(value, int):
        probs.add(where, f"{show(value)} is not an integer ({lo}..{hi})")
        return default
    if not lo <= value <= hi:
        probs.add(where, f"{value} is out of range ({lo}..{hi})")
        return default
    return value


def get_opt_int(t: Table, key: str, path: str, probs: Problems, lo: int, hi: int) -> int | None:
    if t.get(key) is None:
        return None
    return get_int(t, key, path, probs, lo, lo, hi)


def get_float(
    t: Table, key: str, path: str, probs: Problems, default: float, lo: float, hi: float
) -> float:
    value = t.get(key, _MISSING)
    if value is _MISSING:
        return default
    where = join(path, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        probs.add(where, f"{show(value)} is not a number ({lo}..{hi})")
        return default
    if not lo <= value <= hi:
        probs.add(where, f"{value} is out of range ({lo}..{hi})")
        return default
    return float(value)


def get_bool(t: Table, key: str, path: str, probs: Problems, default: bool) -> bool:
    value = t.get(key, _MISSING)
    if value is _MISSING:
        return default
    if not isinstance(value, bool):
        probs.add(join(path, key), f"{show(value)} is not a boolean (true or false)")
        return default
    return value


def get_str(
    t: Table, key: str, path: str, probs: Problems, default: str | None = None
) -> str | None:
    """A string; a missing key gives `default`, and a missing key with no default is an error."""
    value = t.get(key, _MISSING)
    where = join(path, key)
    if value is _MISSING:
        if default is None:
            probs.add(where, "is required")
        return default
    if not isinstance(value, str):
        probs.add(where, f"{show(value)} is not a string")
        return default
    return value


def get_opt_str(t: Table, key: str, path: str, probs: Problems) -> str | None:
    value = t.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        probs.add(join(path, key), f"{show(value)} is not a string")
        return None
    return value


def get_choice(
    t: Table, key: str, path: str, probs: Problems, choices: tuple[str, ...], default: str
) -> str:
    value = t.get(key, _MISSING)
    if value is _MISSING:
        return default
    where = join(path, key)
    if not isinstance(value, str) or value not in choices:
        hint = suggest(value, choices) if isinstance(value, str) else ""
        probs.add(where, f"{show(value)} is not one of {' | '.join(choices)}{hint}")
        return default
    return value


_FORBIDDEN_ID = re.compile(r"[+#/\s\x00-\x1f\x7f]")


def check_id(value: object, where: str, probs: Problems, what: str = "id") -> str | None:
    """An id used as an MQTT topic level: not empty, no + # / and no whitespace."""
    if not isinstance(value, str):
        probs.add(where, f"{show(value)} is not a string")
        return None
    if not value:
        probs.add(where, f"an empty {what} is not allowed (it is used as an MQTT topic level)")
        return None
    bad = _FORBIDDEN_ID.search(value)
    if bad:
        probs.add(
            where,
            f"{show(value)} contains {bad.group()!r}; a topic-safe {what} has no + # / "
            "whitespace or control characters",
        )
        return None
    if len(value.encode()) > 128:
        probs.add(where, f"{show(value)} is longer than 128 bytes")
        return None
    return value


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
DURATION_HELP = 'seconds as a number, or a string like "90s", "15m", "4h", "1h30m", "7d"'


def parse_duration(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip().replace(" ", "")
    if not text:
        return None
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    return total if pos == len(text) else None


def get_duration(
    t: Table, key: str, path: str, probs: Problems, default: float, lo: float, hi: float
) -> float:
    value = t.get(key, _MISSING)
    if value is _MISSING:
        return default
    where = join(path, key)
    seconds = parse_duration(value)
    if seconds is None:
        probs.add(where, f"{show(value)} is not a duration ({DURATION_HELP})")
        return default
    if not lo <= seconds <= hi:
        probs.add(where, f"{show(value)} is out of range ({lo:g}s..{hi:g}s)")
        return default
    return seconds


def get_opt_duration(
    t: Table, key: str, path: str, probs: Problems, lo: float, hi: float
) -> float | None:
    if t.get(key) is None:
        return None
    return get_duration(t, key, path, probs, lo, lo, hi)


_SIZE = re.compile(r"(\d+)\s*(B|KiB|MiB|GiB|kB|MB|GB)?")
_SIZE_MULT = {
    None: 1,
    "B": 1,
    "kB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
}


def get_opt_size(t: Table, key: str, path: str, probs: Problems) -> int | None:
    value = t.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        m = _SIZE.fullmatch(value.strip())
        if m and int(m.group(1)) > 0:
            return int(m.group(1)) * _SIZE_MULT[m.group(2)]
    probs.add(join(path, key), f'{show(value)} is not a size (bytes > 0, or like "64MiB", "1GB")')
    return None


def get_time_of_day(
    t: Table, key: str, path: str, probs: Problems, default: dt.time | None
) -> dt.time | None:
    """A local time of day: TOML `02:30:00` or a string "02:30"."""
    value = t.get(key, _MISSING)
    if value is _MISSING:
        return default
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", value.strip())
        if m and int(m.group(1)) < 24 and int(m.group(2)) < 60 and int(m.group(3) or 0) < 60:
            return dt.time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
    probs.add(join(path, key), f'{show(value)} is not a time of day (like "02:30")')
    return default


def parse_obis(value: object) -> str | None:
    """An OBIS code in dotted form "1.0.99.1.0.255" or IEC form "1-0:99.1.0.255"."""
    if not isinstance(value, str):
        return None
    parts = re.split(r"[.:\-]", value.strip())
    if len(parts) != 6 or not all(p.isdigit() and int(p) <= 255 for p in parts):
        return None
    return ".".join(str(int(p)) for p in parts)


def get_obis(t: Table, key: str, path: str, probs: Problems, default: str | None) -> str | None:
    value = t.get(key, _MISSING)
    if value is _MISSING:
        if default is None:
            probs.add(join(path, key), "is required")
        return default
    obis = parse_obis(value)
    if obis is None:
        probs.add(
            join(path, key),
            f'{show(value)} is not an OBIS code (six numbers 0..255, like "1.0.99.1.0.255")',
        )
        return default
    return obis


def get_str_list(t: Table, key: str, path: str, probs: Problems) -> list[str]:
    value = t.get(key, _MISSING)
    if value is _MISSING:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        probs.add(join(path, key), f"{show(value)} is not an array of strings")
        return []
    return [str(v) for v in value]


def get_hex(value: object, where: str, probs: Problems, length: int) -> bytes | None:
    """Hex text of exactly `length` bytes; the value itself is never put in a message."""
    if not isinstance(value, str):
        probs.add(where, f"is not a hex string ({length} bytes)")
        return None
    text = value.strip().replace(" ", "").replace(":", "")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        probs.add(where, f"is not valid hex (expected {2 * length} hex digits; value not shown)")
        return None
    if len(raw) != length:
        probs.add(where, f"has {len(raw)} bytes, expected {length} (value not shown)")
        return None
    return raw
