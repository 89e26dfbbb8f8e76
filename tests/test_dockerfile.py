"""The Dockerfile cannot be built on the test machine (no Docker); check what can be
checked by reading it: the stages, that every COPY source exists and is not excluded by
.dockerignore, a non-root runtime user, the health check on the default metrics port and
the entry point."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from pathlib import Path

from smmc_gateway.ops.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def instructions() -> list[tuple[str, str]]:
    lines: list[str] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        if raw.lstrip().startswith("#") and not pending:
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line:
            lines.append(line)
    out = []
    for line in lines:
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def excluded(rel: str) -> bool:
    """.dockerignore semantics for the patterns used here (last match wins, ! re-includes)."""
    result = False
    for pat in (ROOT / ".dockerignore").read_text().splitlines():
        pat = pat.strip()
        if not pat or pat.startswith("#"):
            continue
        neg = pat.startswith("!")
        pat = pat.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(rel, pat) or rel.startswith(pat + "/") or pat == "**":
            result = not neg
    return result


def test_stages_and_copy_sources() -> None:
    ins = instructions()
    froms = [rest for word, rest in ins if word == "FROM"]
    assert [f.split()[-1] for f in froms] == ["builder", "runtime"]
    assert "${RUST_IMAGE}" in froms[0] and "${PYTHON_IMAGE}" in froms[1]
    args = dict(rest.split("=", 1) for word, rest in ins if word == "ARG" and "=" in rest)
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    copies = [rest for word, rest in ins if word == "COPY"]
    local = [c for c in copies if not c.startswith("--from")]
    assert local, "no COPY from the build context"
    for copy in local:
        *sources, _dest = copy.split()
        for src in sources:
            path = ROOT / src
            assert path.exists(), f"COPY source {src} does not exist"
            assert not excluded(src.rstrip("/")), f"{src} is excluded by .dockerignore"
    assert any(c.startswith("--from=builder /dist/") for c in copies)
    runs = " ".join(rest for word, rest in ins if word == "RUN")
    assert "maturin build --release" in runs and "pip install" in runs


def test_dockerignore_keeps_secrets_and_builds_out() -> None:
    for path in (
        ".venv/bin/python",
        "target/debug/x",
        ".git/config",
        "docs/keys.example.toml",
        "tests/test_config.py",
    ):
        assert excluded(path), path
    assert not excluded("rust/src/lib.rs") and not excluded("python/smmc_gateway/cli.py")


def test_runtime_user_volume_health_entrypoint(tmp_path: Path) -> None:
    ins = instructions()
    runtime = ins[[i for i, (w, _) in enumerate(ins) if w == "FROM"][1] :]
    user = [rest for word, rest in runtime if word == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert any(w == "VOLUME" and "/var/lib/smmc-gateway" in r for w, r in runtime)
    env = " ".join(r for w, r in runtime if w == "ENV")
    (tmp_path / "g.toml").write_text('[gateway]\nid = "g"\n[broker]\nhost = "h"\n')
    default_port = load_config(tmp_path / "g.toml").metrics.port
    assert f"SMMC_HEALTHCHECK_URL=http://127.0.0.1:{default_port}/metrics" in env
    assert any(w == "HEALTHCHECK" and "SMMC_HEALTHCHECK_URL" in r for w, r in runtime)
    entry = json.loads(next(r for w, r in runtime if w == "ENTRYPOINT"))
    assert entry == ["smmc-gateway", "run"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "smmc-gateway" in scripts
