"""``smmc-gateway profiles render|check|export``.

``render`` runs the scenarios once and writes the documents of every language
(``OUT/es/``, ``OUT/en/``); ``check`` runs them again and compares with the committed
documents (the KPI *Measured* cells are left out of the comparison: they vary from run to
run; whether each KPI meets its target is compared); ``export`` bundles the committed
documents of one language into one DOCX, HTML or PDF file (no scenario is run).
``--config`` names a distributor's ``gateway.toml``: its ``[gateway] operator`` is the
author and aspect 1's architecture is drawn from it (the scenarios still run on the lab).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from smmc_gateway import runtime
from smmc_gateway.profiles.texts import LANGUAGES

DEFAULT_OUT = Path("docs/profiles")
README = """# Interoperability profiles / Perfiles de interoperabilidad

- [Español (es-CL)](es/README.md)
- [English](en/README.md)

Rendered by `smmc-gateway profiles render`, checked by `smmc-gateway profiles check`,
bundled into one file by `smmc-gateway profiles export --lang es --format docx --out FILE`.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "profiles",
        help="the interoperability profiles (rendered from observed scenarios)",
        description="Run the scenarios (Mosquitto, simulated meters, the gateway) and render "
        "docs/profiles/{es,en}/, check that the committed documents still match, "
        "or export them as one document to file with the regulator.",
    )
    sub = p.add_subparsers(dest="profiles_command", required=True, metavar="ACTION")
    for name, text in (
        ("render", "run the scenarios and write the documents"),
        (
            "check",
            "run the scenarios again and compare with the documents (exit 1 on a difference)",
        ),
    ):
        q = sub.add_parser(name, help=text, description=text)
        q.add_argument(
            "--out",
            type=Path,
            default=DEFAULT_OUT,
            help=f"directory of the documents (default {DEFAULT_OUT})",
        )
        q.add_argument(
            "--config",
            type=Path,
            metavar="TOML",
            help="a distributor's gateway.toml: author ([gateway] operator) and "
            "aspect 1's architecture come from it",
        )
        q.set_defaults(handler=run)
    q = sub.add_parser(
        "export",
        help="bundle the committed documents into one file",
        description="Bundle the committed documents of one language into one "
        "DOCX, HTML or PDF file with a title page, a table of "
        "contents and the diagrams as images (offline; no scenario "
        "is run).",
    )
    q.add_argument("--lang", choices=LANGUAGES, required=True)
    q.add_argument("--format", choices=("docx", "html", "pdf"), required=True)
    q.add_argument("--out", type=Path, required=True, metavar="FILE")
    q.add_argument(
        "--docs",
        type=Path,
        default=DEFAULT_OUT,
        help=f"directory of the rendered documents (default {DEFAULT_OUT})",
    )
    q.set_defaults(handler=run_export)


def gateway_version() -> str:
    try:
        return metadata.version("smmc-gateway")
    except metadata.PackageNotFoundError:
        return "unknown"


def observe(config: Path | None = None) -> dict[str, dict[str, str]]:
    """Run the scenarios and render every document: ``{lang: {file name: text}}``."""
    from smmc_gateway.ops.config import load_config
    from smmc_gateway.profiles.architecture import architecture
    from smmc_gateway.profiles.render import Context, Observed, render_all
    from smmc_gateway.profiles.scenarios import run_all
    from smmc_gateway.profiles.texts import load

    obs = runtime.run(run_all())
    runs = {k: Observed(r.aspect, r.steps, r.timing, r.exception) for k, r in obs.runs.items()}
    if config is not None:
        deployment = load_config(config)
        arch = architecture(deployment)
        source = str(config)
    else:
        arch = architecture(obs.config, volatile_ports=True)
        source = "lab"
    out: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        t = load(lang)
        author = arch.operator or (
            t.meta["lab_operator"] if config is None else t.meta["author_unset"]
        )
        label = t.meta["lab_operator"] if source == "lab" else source
        out[lang] = render_all(runs, t, Context(author, gateway_version(), arch, label))
    return out


def check(out: Path, docs: dict[str, str]) -> list[str]:
    """Differences between ``docs`` and the files in ``out`` (unified diffs, KPI measured
    values left out), none if equal."""
    from smmc_gateway.profiles.kpis import mask_measured

    problems: list[str] = []
    for name, text in docs.items():
        path = out / name
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if mask_measured(old) != mask_measured(text):
            problems.append(
                "".join(
                    difflib.unified_diff(
                        mask_measured(old).splitlines(True),
                        mask_measured(text).splitlines(True),
                        f"{path} (committed)",
                        f"{path} (observed now)",
                    )
                )
                or f"{path}: missing"
            )
    if out.is_dir():
        for extra in sorted({p.name for p in out.glob("*.md")} - set(docs)):
            problems.append(f"{out / extra}: not rendered any more (remove it)")
    return problems


def run(args: argparse.Namespace) -> int:
    from smmc_gateway.ops.logging import configure_logging

    configure_logging("warning")  # the gateway's and simulator's info lines are noise here
    rendered = observe(getattr(args, "config", None))
    out: Path = args.out
    count = sum(len(d) for d in rendered.values())
    if args.profiles_command == "render":
        for lang, docs in rendered.items():
            (out / lang).mkdir(parents=True, exist_ok=True)
            for name, text in docs.items():
                (out / lang / name).write_text(text, encoding="utf-8")
        (out / "README.md").write_text(README, encoding="utf-8")
        for stale in sorted(out.glob("[0-9][0-9]-*.md")):
            stale.unlink()  # the single-language layout before es/ and en/
        print(f"profiles: {count} documents written to {out}/{{{','.join(rendered)}}}")
        return 0
    problems: list[str] = []
    for lang, docs in rendered.items():
        problems += check(out / lang, docs)
    for p in problems:
        sys.stdout.write(p if p.endswith("\n") else p + "\n")
    if problems:
        print(
            f"profiles check: {len(problems)} document(s) differ from what was observed; "
            "run `smmc-gateway profiles render` and review the diff",
            file=sys.stderr,
        )
        return 1
    print(f"profiles check: {count} documents match the observed scenarios")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from smmc_gateway.profiles.export import ExportError, export

    try:
        path = export(args.docs / args.lang, args.lang, args.format, args.out, gateway_version())
    except ExportError as exc:
        print(f"smmc-gateway profiles export: {exc}", file=sys.stderr)
        return 2
    print(f"profiles export: {path}")
    return 0


def main_check(out: str) -> int:
    """``profiles check --out OUT`` without the rest of the CLI (for tests and scripts)."""
    return run(argparse.Namespace(profiles_command="check", out=Path(out), config=None))
