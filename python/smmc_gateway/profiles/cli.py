"""``smmc-gateway profiles render|check``: write the profiles, or verify the committed ones."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import sys
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("docs/profiles")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "profiles", help="the interoperability profiles (rendered from observed scenarios)",
        description="Run the scenarios (Mosquitto, simulated meters, the gateway) and render "
                    "docs/profiles/, or check that the committed documents still match.")
    sub = p.add_subparsers(dest="profiles_command", required=True, metavar="ACTION")
    for name, text in (("render", "write the documents"),
                       ("check", "re-run and compare with the documents (exit 1 on a diff)")):
        q = sub.add_parser(name, help=text, description=text)
        q.add_argument("--out", type=Path, default=DEFAULT_OUT,
                       help=f"directory of the documents (default {DEFAULT_OUT})")
        q.set_defaults(handler=run)


def observe() -> dict[str, str]:
    """Run the scenarios and render every document: ``{file name: text}``."""
    from smmc_gateway.profiles.render import render_all
    from smmc_gateway.profiles.scenarios import run_all

    return render_all(asyncio.run(run_all()))


def check(out: Path, docs: dict[str, str]) -> list[str]:
    """Differences between ``docs`` and the files in ``out`` (unified diffs), none if equal."""
    problems: list[str] = []
    for name, text in docs.items():
        path = out / name
        old = path.read_text() if path.exists() else ""
        if old != text:
            problems.append("".join(difflib.unified_diff(
                old.splitlines(True), text.splitlines(True), f"{path} (committed)",
                f"{path} (observed now)")) or f"{path}: missing")
    if out.is_dir():
        for extra in sorted(set(p.name for p in out.glob("*.md")) - set(docs)):
            problems.append(f"{out / extra}: not rendered any more (remove it)")
    return problems


def run(args: argparse.Namespace) -> int:
    from smmc_gateway.ops.logging import configure_logging

    configure_logging("warning")  # the gateway's and simulator's info lines are noise here
    docs = observe()
    out: Path = args.out
    if args.profiles_command == "render":
        out.mkdir(parents=True, exist_ok=True)
        for name, text in docs.items():
            (out / name).write_text(text)
        print(f"profiles: {len(docs)} documents written to {out}")
        return 0
    problems = check(out, docs)
    for p in problems:
        sys.stdout.write(p if p.endswith("\n") else p + "\n")
    if problems:
        print(f"profiles check: {len(problems)} document(s) differ from what was observed; "
              "run `smmc-gateway profiles render` and review the diff", file=sys.stderr)
        return 1
    print(f"profiles check: {len(docs)} documents match the observed scenarios")
    return 0


def main_check(out: str) -> int:
    """``profiles check --out OUT`` without the rest of the CLI (for tests and scripts)."""
    return run(argparse.Namespace(profiles_command="check", out=Path(out)))
