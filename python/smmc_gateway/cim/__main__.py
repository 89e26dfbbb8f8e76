"""``python -m smmc_gateway.cim render|check [--repo DIR]``: write the documents and event-type
schemas rendered from the CIM tables, or check that the committed ones match (exit 1)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from smmc_gateway.cim.render import check, write


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m smmc_gateway.cim", description=__doc__)
    p.add_argument("action", choices=("render", "check"))
    p.add_argument(
        "--repo",
        type=Path,
        default=Path.cwd(),
        help="the repository root (default: the current directory)",
    )
    args = p.parse_args(argv)
    repo: Path = args.repo
    if not (repo / "docs" / "schemas").is_dir():
        print(
            f"{repo}: no docs/schemas here; run from the repository root or give --repo",
            file=sys.stderr,
        )
        return 2
    if args.action == "render":
        changed = write(repo)
        print(f"cim: {len(changed)} file(s) changed: {', '.join(changed) or '-'}")
        return 0
    stale = check(repo)
    if stale:
        print(
            "cim: out of date (run `python -m smmc_gateway.cim render`): " + ", ".join(stale),
            file=sys.stderr,
        )
        return 1
    print("cim: documents and schemas match the tables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
