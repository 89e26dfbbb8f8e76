"""``profiles export``: the committed documents of one language as one file to submit.

Reads ``docs/profiles/<lang>/`` (no scenario is run), draws every Mermaid diagram as a PNG
(:mod:`~smmc_gateway.profiles.images`), and has pandoc make one DOCX or HTML with a
title page (distribution company, gateway version, date), a table of contents and the 15
documents; PDF is made from the DOCX by LibreOffice (``libreoffice --headless``). Every
tool is from the Debian archive and works offline; a missing one is an
:class:`ExportError` naming its package.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from smmc_gateway.profiles.images import ImageError, draw
from smmc_gateway.profiles.texts import load

MERMAID = re.compile(r"```mermaid\n(.*?)```", re.S)
LINK = re.compile(r"\[([^\]]+)\]\((?!https?:)[^)]+\)")
COMMENT = re.compile(r"<!--.*?-->\n?", re.S)
FIELD = re.compile(r"^- ([^:]+): (.+)$", re.M)
PAGE = '\n\n```{=openxml}\n<w:p><w:r><w:br w:type="page"/></w:r></w:p>\n```\n\n'
"""A page break in DOCX (and the PDF made from it); other formats ignore it."""


class ExportError(Exception):
    """The export cannot be made (the message says what is missing or wrong)."""


def _documents(directory: Path) -> tuple[str, list[str]]:
    index = directory / "README.md"
    docs = sorted(directory.glob("[0-9][0-9]-*.md"))
    if not index.exists() or len(docs) != 15:
        raise ExportError(
            f"{directory}: expected README.md and 15 documents, found "
            f"{'README.md and ' if index.exists() else ''}{len(docs)} document(s)"
            "; run `smmc-gateway profiles render` first"
        )
    return index.read_text(encoding="utf-8"), [d.read_text(encoding="utf-8") for d in docs]


def bundle(directory: Path, lang: str, version: str, images: Path) -> tuple[str, dict[str, str]]:
    """The one Markdown document and its pandoc metadata; diagrams drawn into ``images``."""
    t = load(lang)
    index, docs = _documents(directory)
    fields = dict(FIELD.findall(index))
    lb = t.labels
    meta = {
        "title": t.meta["document"],
        "subtitle": t.meta["subtitle"],
        "author": fields.get(lb["author"], t.meta["author_unset"]),
        "date": f"{fields.get(lb['date'], t.meta['date'])} · smmc-gateway {version}",
        "lang": "es-CL" if lang == "es" else "en",
        "toc-title": t.meta["toc"],
    }
    intro = [
        f"**{t.meta['title_page_operator']}:** {meta['author']}",
        "",
        f"**{t.meta['title_page_gateway']}:** {version}",
        "",
        f"**{t.meta['title_page_date']}:** {fields.get(lb['date'], t.meta['date'])}",
        "",
        t.meta["index_intro"],
        "",
    ]
    glossary = (
        index[index.find(f"## {lb['glossary']}") :] if f"## {lb['glossary']}" in index else ""
    )
    titles = [d.split("\n# ", 1)[1].split("\n", 1)[0] for d in docs]
    toc = [f"# {t.meta['toc']}", ""] + [f"- {title}" for title in titles]
    toc.append(f"- {lb['glossary']}")
    body = PAGE.join(COMMENT.sub("", d) for d in docs)
    text = (
        "\n".join(intro)
        + PAGE
        + "\n".join(toc)
        + PAGE
        + body
        + PAGE
        + glossary.replace("## ", "# ", 1)
    )
    text = LINK.sub(r"\1", text)
    blocks = [m.group(1).strip("\n").splitlines() for m in MERMAID.finditer(text)]
    try:
        pngs = draw(blocks, images)
    except ImageError as exc:
        raise ExportError(str(exc)) from None
    it = iter(pngs)
    text = MERMAID.sub(lambda _m: f"\n![]({next(it)})\n", text)
    return text, meta


def _pandoc() -> str:
    path = shutil.which("pandoc")
    if path is None:
        raise ExportError("pandoc is not installed: apt-get install pandoc (Debian)")
    return path


def export(directory: Path, lang: str, fmt: str, out: Path, version: str) -> Path:
    """Write the bundle of ``directory`` (one language) to ``out`` as docx, html or pdf."""
    if fmt not in ("docx", "html", "pdf"):
        raise ExportError(f"format {fmt!r}: one of docx, html, pdf")
    office = None
    if fmt == "pdf":
        office = shutil.which("libreoffice") or shutil.which("soffice")
        if office is None:
            raise ExportError(
                "PDF needs LibreOffice: apt-get install libreoffice-writer-nogui "
                "(Debian), or export --format docx and print it to PDF"
            )
    pandoc = _pandoc()
    with tempfile.TemporaryDirectory(prefix="smmc-export-") as tmp:
        work = Path(tmp)
        text, meta = bundle(directory, lang, version, work / "img")
        source = work / "profiles.md"
        source.write_text(text, encoding="utf-8")
        args = [
            pandoc,
            str(source),
            "-f",
            "markdown-yaml_metadata_block",
            "--resource-path",
            str(work),
        ]
        for key, value in meta.items():
            args += ["-M", f"{key}={value}"]
        target = work / f"profiles.{'docx' if fmt != 'html' else 'html'}"
        if fmt == "html":
            args += ["-s", "--self-contained", "-t", "html5"]
        else:
            args += ["-t", "docx"]
        _run([*args, "-o", str(target)], "pandoc")
        if fmt == "pdf":
            assert office is not None
            _run(
                [office, "--headless", "--convert-to", "pdf", "--outdir", str(work), str(target)],
                "libreoffice",
            )
            target = work / "profiles.pdf"
            if not target.exists():
                raise ExportError("libreoffice made no PDF")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, out)
    return out


def _run(cmd: list[str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExportError(f"{what} could not run: {exc}") from None
    if proc.returncode != 0:
        raise ExportError(
            f"{what} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[:500]}"
        )
