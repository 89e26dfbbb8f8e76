"""The hand-written parts of the profiles, per language, kept as data (``texts/<lang>.toml``).

Each language file has every IEC 62559-2 section of every aspect (``[aspect.N]``), the
section and table labels, actor names and roles, the glossary, scenario titles and (for a
translation) the phrases that turn the observed steps' English into the language. A
reviewer or translator edits the TOML, not the code. :func:`load` reads and checks a
language: a missing section, aspect or scenario title is an error naming it, so a
document is never rendered half translated.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "texts"
LANGUAGES = ("es", "en")

ASPECT_KEYS = (
    "name",
    "central",
    "scope",
    "objectives",
    "reference",
    "short",
    "narrative",
    "triggers",
    "assumptions",
    "design",
    "pre",
    "post",
    "exceptions",
    "kpi_latency_s",
    "kpi_completion_s",
)
LIST_KEYS = ("objectives", "triggers", "assumptions", "design", "pre", "post", "exceptions")


class TextsError(Exception):
    """A language file is missing something or has it in the wrong shape."""


@dataclass(frozen=True)
class Texts:
    lang: str
    meta: dict[str, str]
    labels: dict[str, str]
    kpi: dict[str, str]
    channels: dict[str, str]
    actors: dict[str, str]  # actor (English, as observed) -> role
    actor_names: dict[str, str]  # actor (English) -> name in this language
    arch: dict[str, dict[str, str]]
    glossary: dict[str, str]
    scenarios: dict[str, str]
    aspects: dict[int, dict[str, Any]]
    phrases: tuple[tuple[str, str], ...]  # (English, this language), applied in order

    def actor(self, name: str) -> str:
        return self.actor_names.get(name, name)

    def step(self, message: str) -> str:
        """An observed step's message in this language (technical tokens stay)."""
        for en, tr in self.phrases:
            message = message.replace(en, tr)
        return message


def _table(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise TextsError(f"{where}: [{key}] is missing")
    return value


@cache
def load(lang: str) -> Texts:
    """The texts of ``lang`` (one of :data:`LANGUAGES`), checked."""
    if lang not in LANGUAGES:
        raise TextsError(f"language {lang!r}: not one of {', '.join(LANGUAGES)}")
    path = HERE / f"{lang}.toml"
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TextsError(f"{path}: {exc}") from None
    where = str(path)
    aspects: dict[int, dict[str, Any]] = {}
    for key, body in _table(doc, "aspect", where).items():
        if not key.isdigit() or not isinstance(body, dict):
            raise TextsError(f"{where}: [aspect.{key}] is not an aspect number")
        missing = [k for k in ASPECT_KEYS if k not in body]
        if missing:
            raise TextsError(f"{where}: [aspect.{key}] lacks {', '.join(missing)}")
        for k in LIST_KEYS:
            if not isinstance(body[k], list) or not all(isinstance(i, str) for i in body[k]):
                raise TextsError(f"{where}: [aspect.{key}] {k} must be a list of strings")
        aspects[int(key)] = body
    if sorted(aspects) != list(range(1, 16)):
        raise TextsError(f"{where}: aspects {sorted(aspects)}; expected 1 to 15")
    phrases = tuple((str(p[0]), str(p[1])) for p in doc.get("phrases", []))
    arch = _table(doc, "arch", where)
    return Texts(
        lang,
        _table(doc, "meta", where),
        _table(doc, "labels", where),
        _table(doc, "kpi", where),
        _table(doc, "channels", where),
        _table(doc, "actors", where),
        dict(doc.get("actor_names", {})),
        {k: dict(v) for k, v in arch.items()},
        _table(doc, "glossary", where),
        _table(doc, "scenarios", where),
        aspects,
        phrases,
    )


def same_keys(a: Texts, b: Texts) -> list[str]:
    """Where two languages differ in what they define (empty when they match)."""
    out: list[str] = []
    for name in ("meta", "labels", "kpi", "channels", "actors", "scenarios"):
        ka, kb = set(getattr(a, name)), set(getattr(b, name))
        out += [f"[{name}] {k}: only in {a.lang}" for k in sorted(ka - kb)]
        out += [f"[{name}] {k}: only in {b.lang}" for k in sorted(kb - ka)]
    for group in set(a.arch) | set(b.arch):
        ka, kb = set(a.arch.get(group, {})), set(b.arch.get(group, {}))
        out += [f"[arch.{group}] {k}: only in one language" for k in sorted(ka ^ kb)]
    for n in range(1, 16):
        for k in LIST_KEYS:
            if len(a.aspects[n][k]) != len(b.aspects[n][k]):
                out.append(
                    f"[aspect.{n}] {k}: {len(a.aspects[n][k])} items in {a.lang}, "
                    f"{len(b.aspects[n][k])} in {b.lang}"
                )
    return out
