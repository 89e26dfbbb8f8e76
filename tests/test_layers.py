"""Data flows one way (docs/architecture.md): transport -> core -> session -> use case ->
head-end -> uplink. No module imports a layer above its own, not even for a type (an
import under ``TYPE_CHECKING`` is a dependency too). Found by reading every module's
imports (``ast``), so a new file is checked as soon as it exists."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "smmc_gateway"

#: package -> the packages it must never import
FORBIDDEN: dict[str, set[str]] = {
    "cosem": {"cim", "dlms", "usecases", "headend", "uplink", "ops", "models", "simulator"},
    "cim": {"dlms", "usecases", "headend", "uplink", "ops", "models", "simulator", "cli"},
    "dlms": {"usecases", "headend", "uplink", "ops", "models", "simulator", "cli", "api"},
    "usecases": {"headend", "uplink", "cli", "api", "simulator", "profiles"},
    "uplink": {"dlms", "usecases", "headend", "simulator", "cli", "api"},
    "headend": {"cli", "api", "simulator", "profiles"},
    "simulator": {"usecases", "headend", "uplink", "cli", "api"},
    "ops": {"dlms", "usecases", "headend", "uplink", "simulator", "cli"},
    "models": {"dlms", "usecases", "headend", "uplink", "simulator", "cli"},
    "translate": {"dlms", "usecases", "headend", "uplink", "simulator", "cli"},
}


def _imports(path: Path) -> set[str]:
    """The smmc_gateway subpackages ``path`` imports (relative imports resolved)."""
    rel = path.relative_to(PACKAGE)
    own = list(rel.parts[:-1])
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = own[: len(own) - node.level + 1]
                names = [".".join(["smmc_gateway", *base, *(node.module or "").split(".")])]
            elif node.module:
                names = [node.module]
                if node.module == "smmc_gateway":
                    names = [f"smmc_gateway.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "smmc_gateway" and len(parts) > 1:
                out.add(parts[1])
    return out


def _modules(package: str) -> list[Path]:
    single = PACKAGE / f"{package}.py"  # a layer that is one module (translate.py)
    return [single] if single.exists() else sorted((PACKAGE / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_module_imports_a_layer_above_its_own(package: str) -> None:
    found = {
        f"{path.relative_to(PACKAGE)} imports {target}"
        for path in _modules(package)
        for target in _imports(path) & FORBIDDEN[package]
    }
    assert not found, sorted(found)


def test_the_scan_sees_imports() -> None:
    """The scan itself: it finds a known downward import and a relative one."""
    assert "cosem" in _imports(PACKAGE / "dlms" / "client.py")
    assert "dlms" in _imports(PACKAGE / "usecases" / "readings.py")
    assert all(_modules(p) for p in FORBIDDEN), "a package in FORBIDDEN has no modules"
