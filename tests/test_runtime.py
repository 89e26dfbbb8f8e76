"""The event loop every program runs on (smmc_gateway.runtime): uvloop by default where
installed, the standard library's with SMMC_EVENT_LOOP=asyncio, an unknown choice refused
with a message that names it (and the CLI's usage exit status)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from smmc_gateway import runtime


async def _name() -> str:
    await asyncio.sleep(0)
    return runtime.running_loop_name()


def test_default_is_uvloop_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")
    monkeypatch.delenv(runtime.ENV, raising=False)
    assert runtime.loop_factory()[0] == "uvloop"
    assert runtime.run(_name()) == "uvloop"


@pytest.mark.parametrize("choice", ["asyncio", " AsyncIO "])
def test_the_standard_librarys_loop_on_request(
    monkeypatch: pytest.MonkeyPatch, choice: str
) -> None:
    monkeypatch.setenv(runtime.ENV, choice)
    assert runtime.run(_name()) == "asyncio"


def test_an_unknown_loop_is_refused_and_the_coroutine_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(runtime.ENV, "tokio")
    coro = _name()
    with pytest.raises(runtime.EventLoopChoiceError, match=r"SMMC_EVENT_LOOP='tokio'.*asyncio"):
        runtime.run(coro)
    assert coro.cr_frame is None  # closed: no "never awaited" warning


def test_uvloop_insisted_on_where_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_uvloop_factory", lambda: None)
    with pytest.raises(runtime.EventLoopChoiceError, match="uvloop is not installed"):
        runtime.loop_factory("uvloop")
    assert runtime.loop_factory("auto")[0] == "asyncio"  # auto falls back


def test_the_programs_report_a_bad_choice_as_a_usage_error() -> None:
    env = {**os.environ, runtime.ENV: "tokio"}
    for argv in (
        ["smmc_gateway.cli", "meter", "--tcp", "127.0.0.1:1", "clock"],
        ["smmc_gateway.simulator", "--tcp", "0"],
    ):
        r = subprocess.run(
            [sys.executable, "-m", *argv], capture_output=True, text=True, env=env, timeout=60
        )
        assert r.returncode == 2 and "SMMC_EVENT_LOOP='tokio'" in r.stderr, (argv, r.stderr)
