"""The type of a JSON document (parsed, or about to be written): what the gateway keeps
in its journals and summaries and takes from requests. Precise where ``dict[str, Any]``
is not: a value that JSON cannot hold (a datetime, bytes) is a type error, and a reader
narrows what it takes (``isinstance``) before using it."""

from __future__ import annotations

from typing import TypeAlias

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"

__all__ = ["JsonObject", "JsonValue"]
