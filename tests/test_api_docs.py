"""docs/api.md cannot rot: its python blocks run, in order and in one namespace, against
the simulator started with the very command line the page shows (on a free port), and
its pycon blocks run as doctests.

A block right after ``<!-- not run: ... -->`` is a sketch and is only compiled.
"""

from __future__ import annotations

import ast
import doctest
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from tests.support_sim import simulator_process

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
FENCE = re.compile(r"(<!-- not run:[^>]*-->\n)?```(\w+)\n(.*?)^```", re.S | re.M)
DOC_PORT = "127.0.0.1:4059"


def blocks(lang: str) -> list[tuple[bool, str]]:
    """(runnable, code) of each block of ``lang``, in page order; the code is preceded
    by blank lines so that tracebacks give the page's line numbers."""
    text = DOC.read_text()
    return [
        (m[1] is None, "\n" * text.count("\n", 0, m.start(3)) + m[3])
        for m in FENCE.finditer(text)
        if m[2] == lang
    ]


def simulate_args() -> list[str]:
    """The page's ``smmc-gateway simulate`` command, on a free port."""
    (command,) = [c for _, c in blocks("sh") if "smmc-gateway simulate" in c]
    argv = shlex.split(command.strip())
    assert argv[:2] == ["smmc-gateway", "simulate"], argv
    args = argv[2:]
    i = args.index("--tcp")
    assert args[i + 1] == DOC_PORT.rsplit(":", 1)[1], "the page's port changed: update DOC_PORT"
    args[i + 1] = "0"
    return args


def test_the_page_has_what_the_test_runs() -> None:
    python = blocks("python")
    assert sum(run for run, _ in python) >= 5
    assert blocks("pycon")
    for run, code in python:
        # the sketches are Python too (top-level await allowed)
        compile(code, str(DOC), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        if run:
            assert "await" not in code or "asyncio.run(" in code


def test_python_blocks_run_against_the_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the examples' counters.sqlite goes here
    with simulator_process(simulate_args()) as sim:
        port = sim.info["meters"][0]["port"]
        namespace: dict[str, Any] = {"__name__": "api_doc"}
        ran = 0
        for run, code in blocks("python"):
            if not run:
                continue
            exec(compile(code.replace(DOC_PORT, f"127.0.0.1:{port}"), str(DOC), "exec"), namespace)
            ran += 1
    out = capsys.readouterr().out
    assert ran >= 5
    assert "active energy import:" in out
    assert "3/1.0.99.99.0.255/2: object-undefined" in out
    assert (tmp_path / "counters.sqlite").exists()
    assert (tmp_path / "counters.sqlite.system-title").exists()


def test_pycon_blocks_are_doctests() -> None:
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for n, (_, code) in enumerate(blocks("pycon")):
        test = parser.get_doctest(code, {}, f"api.md pycon {n}", str(DOC), 0)
        assert test.examples
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0 and result.attempted >= 5
