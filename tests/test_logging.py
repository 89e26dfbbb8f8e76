"""Logging: JSON lines off a TTY, human output on one, secrets never reach the output,
meter lines carry meter_id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from smmc_gateway.ops.config_model import Secret
from smmc_gateway.ops.logging import (
    REDACTED,
    bind_meter,
    configure_logging,
    get_logger,
    is_secret_key,
    meter_logger,
)

EK_HEX = "000102030405060708090a0b0c0d0e0f"


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logging.getLogger().handlers.clear()


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_json_lines_when_not_a_tty() -> None:
    out = io.StringIO()
    configure_logging("info", "auto", stream=out)
    meter_logger("m-0001").info("read_ok", use_case="load_profile", rows=96)
    get_logger().debug("not_shown")
    [line] = lines(out)
    assert line["event"] == "read_ok" and line["meter_id"] == "m-0001"
    assert line["level"] == "info" and line["rows"] == 96
    assert str(line["timestamp"]).endswith("Z")


def test_console_output_on_a_tty() -> None:
    out = FakeTty()
    configure_logging("info", "auto", stream=out)
    meter_logger("m-7").info("session_opened")
    text = out.getvalue()
    assert "session_opened" in text and "meter_id" in text and "m-7" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])
    out2 = FakeTty()
    configure_logging("info", "json", stream=out2)  # override: JSON even on a TTY
    assert lines_ok(out2)


def lines_ok(out: io.StringIO) -> bool:
    get_logger().info("probe")
    return lines(out)[0]["event"] == "probe"


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_secrets_never_reach_the_output(fmt: str) -> None:
    out = io.StringIO()
    configure_logging("debug", fmt, stream=out)  # type: ignore[arg-type]
    log = meter_logger("m-1", password="pw-LEAK-1")
    log.info(
        "association_started",
        ek=EK_HEX,
        ak=bytes.fromhex(EK_HEX).hex(),
        key="k-LEAK-2",
        token="t-LEAK-3",
        secret="s-LEAK-4",
        params={"master_key": "mk-LEAK-5", "nested": [{"auth_password": "np-LEAK-6"}]},
        keys=Secret(b"LEAK-7"),
        opaque=Secret(b"LEAK-8"),
        key_id="grp-a",
    )
    logging.getLogger("aiomqtt").warning("stdlib %s", "line", extra={"password": "std-LEAK-9"})
    text = out.getvalue()
    for leak in ("LEAK", EK_HEX):
        assert leak not in text, text
    assert REDACTED in text and "grp-a" in text and "association_started" in text
    assert "m-1" in text


def test_stdlib_logging_goes_through_the_same_pipeline() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    logging.getLogger("aiomqtt").warning("broker_unreachable", extra={"password": "x", "n": 3})
    [line] = lines(out)
    assert line["event"] == "broker_unreachable" and line["logger"] == "aiomqtt"
    assert line["password"] == REDACTED and line["n"] == 3


def test_bind_meter_in_context() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    bind_meter("m-42")
    structlog.get_logger().info("poll_done")
    assert lines(out)[0]["meter_id"] == "m-42"


def test_event_names_checked() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    get_logger().info("Read OK!")
    get_logger().info("read_ok")
    first, second = lines(out)
    assert first["event_name_invalid"] is True
    assert "event_name_invalid" not in second


def test_secret_key_names() -> None:
    for name in (
        "password",
        "ek",
        "ak",
        "key",
        "secret",
        "token",
        "master_key",
        "api_token",
        "broker_password",
        "KEK",
    ):
        assert is_secret_key(name), name
    for name in ("key_id", "meter_id", "keepalive", "peak", "monkey", "event", "bytes"):
        assert not is_secret_key(name), name


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_tracebacks_do_not_show_local_secrets(fmt: str) -> None:
    out = FakeTty()
    configure_logging("info", fmt, stream=out)  # type: ignore[arg-type]

    def associate(password: str) -> None:
        raise ValueError("association refused")

    secret = "-".join(("tb", "LEAK", "pw"))  # built at run time: not in the source lines
    try:
        associate(secret)
    except ValueError:
        get_logger().exception("association_failed")
    text = out.getvalue()
    assert "association refused" in text and "associate" in text
    assert "tb-LEAK-pw" not in text
