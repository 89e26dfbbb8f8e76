"""Human output for the CLI: layer trees, typed-value trees, tables and progress bars.

Built on ``rich``: colour only when the stream is a terminal (and ``NO_COLOR`` is
unset), plain text otherwise so output can be piped and grepped. Nothing here
knows about meters or sessions; it renders what it is given.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from smmc_gateway import _core
from smmc_gateway.cosem.values import TypedValue, as_typed
from smmc_gateway.translate import Layer


def make_console(stream: TextIO | None = None) -> Console:
    """A console on ``stream`` (stdout by default): colour only for a terminal."""
    out = stream if stream is not None else sys.stdout
    is_tty = hasattr(out, "isatty") and out.isatty()
    return Console(
        file=out,
        force_terminal=is_tty,
        no_color=not is_tty or "NO_COLOR" in os.environ,
        highlight=False,
        # Piped output is not wrapped at all (a grep must see whole lines).
        width=None if is_tty else 100_000,
    )


# ---------------------------------------------------------------- typed values
def obis_text(hex_value: str) -> str | None:
    """A 6-byte octet-string shown as an OBIS code a.b.c.d.e.f."""
    if len(hex_value) != 12:
        return None
    return ".".join(str(b) for b in bytes.fromhex(hex_value))


def value_text(tv: TypedValue) -> str:
    """One line for a scalar typed value (containers give their size)."""
    t = tv.get("type", "?")
    v = tv.get("value")
    if t in ("array", "structure", "compact-array"):
        return f"{t} ({len(v) if isinstance(v, list) else '?'} elements)"
    if "datetime" in tv:
        return f"{t} {v} ({tv['datetime']})" if t == "octet-string" else f"{t} {tv['datetime']}"
    if t == "octet-string" and isinstance(v, str):
        return _octet_text(v)
    if t in ("date-time", "date", "time") and isinstance(v, str):
        return f"{t} {v}"
    if t == "null-data":
        return "null-data"
    if t == "visible-string" or t == "utf8-string":
        return f"{t} {v!r}"
    if t == "enum":
        return f"enum {v}"
    return f"{t} {v}"


def _octet_text(v: str) -> str:
    obis = obis_text(v)
    if obis is not None:
        return f"octet-string {v} (OBIS {obis})"
    if len(v) == 24:
        try:
            dt = _core.decode_datetime(bytes.fromhex(v))
        except (ValueError, _core.DlmsError):
            dt = None
        if dt is not None:
            return f"octet-string {v} ({dt.isoformat()})"
    raw = bytes.fromhex(v) if len(v) % 2 == 0 else b""
    if raw and raw.isascii() and raw.decode().isprintable():
        return f"octet-string {v} ({raw.decode()!r})"
    return f"octet-string {v}" if v else "octet-string (empty)"


def add_value(tree: Tree, tv: Any, label: str = "") -> None:
    """Add a typed value under ``tree`` (containers as sub-trees)."""
    prefix = f"{label}: " if label else ""
    typed_value = as_typed(tv)
    if typed_value is None:
        tree.add(f"{prefix}{tv!r}")
        return
    tv = typed_value
    node = tree.add(Text(prefix + value_text(tv)))
    items = tv.get("value")
    if tv.get("type") in ("array", "structure", "compact-array") and isinstance(items, list):
        for i, item in enumerate(items):
            add_value(node, item, f"[{i}]")


def value_tree(tv: TypedValue, title: str = "value") -> Tree:
    tree = Tree(Text(title, style="bold"))
    add_value(tree, tv)
    return tree


# ---------------------------------------------------------------- layers
def layer_tree(layers: Sequence[Layer], title: str = "decoded") -> Tree:
    root = Tree(Text(title, style="bold"))
    for layer in layers:
        _add_layer(root, layer)
    return root


def _add_layer(parent: Tree, layer: Layer) -> None:
    head = Text(layer.name, style="bold cyan")
    head.append(f"  @{layer.offset}, {layer.length} bytes", style="dim")
    node = parent.add(head)
    for f in layer.fields:
        if f.typed:
            add_value(node, f.value, f.name)
            continue
        line = Text(f"{f.name}: ", style="green")
        line.append(str(f.value))
        if f.text:
            line.append(f"  ({f.text})", style="yellow")
        if f.offset is not None:
            line.append(f"  @{f.offset}", style="dim")
        node.add(line)
    for note in layer.notes:
        node.add(Text(f"note: {note}", style="dim italic", overflow="fold"))
    if layer.error is not None:
        e = layer.error
        where = f" at byte {e.offset}" if e.offset is not None else ""
        node.add(Text(f"ERROR in {e.field}{where}: {e.message}", style="bold red", overflow="fold"))
    for child in layer.children:
        _add_layer(node, child)


# ---------------------------------------------------------------- tables
def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> Table:
    t = Table(title=title, header_style="bold", show_lines=False, pad_edge=True)
    for i, c in enumerate(columns):
        # The first column (time, class, name) never wraps; the others fold if they must.
        t.add_column(c, overflow="fold", no_wrap=i == 0)
    for row in rows:
        t.add_row(*(cell_text(c) for c in row))
    return t


def cell_text(value: Any) -> str:
    """A table cell: datetimes in local time, bytes as hex, typed values in one line."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return local_time(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    typed_value = as_typed(value)
    if typed_value is not None:
        return _typed_cell(typed_value)
    return str(value)


def _typed_cell(tv: TypedValue) -> str:
    """A typed value in a table cell: the value only (the column says what it is)."""
    if "datetime" in tv:
        try:
            return local_time(datetime.fromisoformat(str(tv["datetime"])))
        except ValueError:
            return str(tv["datetime"])
    t, v = tv.get("type"), tv.get("value")
    if t == "octet-string" and isinstance(v, str):
        return obis_text(v) or v
    if t in ("array", "structure", "compact-array"):
        return value_text(tv)
    return "-" if t == "null-data" else str(v)


def local_time(value: datetime) -> str:
    """Aware datetimes shown in local time with the offset; naive ones as they are."""
    if value.tzinfo is not None:
        value = value.astimezone()
        return value.strftime("%Y-%m-%d %H:%M:%S %z")
    return value.strftime("%Y-%m-%d %H:%M:%S")


def progress(console: Console) -> Progress:
    """A transfer progress bar (bytes, speed, time left)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
