"""`[models.NAME]` quirk settings (docs/configuration.md, *Tolerant reception*):
harmless quirks tolerated by default, each refusable, `strict = true` refuses all,
`plain-initiate-response` opt-in; the daemon's sessions get the model's set."""

from __future__ import annotations

from pathlib import Path

import pytest
from smmc_gateway import _core
from smmc_gateway.dlms.association import DEFAULT_QUIRKS as SESSION_DEFAULTS
from smmc_gateway.dlms.association import SessionSettings, core_config
from smmc_gateway.ops.config import load_config
from smmc_gateway.ops.config_model import DEFAULT_QUIRKS, KNOWN_QUIRKS

from tests.test_config import BASE, problems, write

HARMLESS = {
    "trailing-bytes",
    "acse-field-length",
    "initiate-response-length",
    "rejection-without-user-information",
    "event-time-data-tag",
}


def quirks(tmp_path: Path, body: str) -> frozenset[str]:
    cfg = load_config(write(tmp_path, BASE + "[models.x]\n" + body))
    return cfg.models["x"].quirks


def test_the_configuration_and_the_core_name_the_same_quirks() -> None:
    core = {name: (text, default) for name, text, default in _core.known_quirks()}
    assert set(core) == set(KNOWN_QUIRKS)
    assert {n for n, (_, d) in core.items() if d} == DEFAULT_QUIRKS == SESSION_DEFAULTS == HARMLESS


def test_harmless_quirks_are_tolerated_by_default(tmp_path: Path) -> None:
    assert quirks(tmp_path, "") == HARMLESS
    assert SessionSettings().quirks == HARMLESS


def test_plain_initiate_response_only_when_listed(tmp_path: Path) -> None:
    got = quirks(tmp_path, 'quirks = ["plain-initiate-response"]\n')
    assert got == HARMLESS | {"plain-initiate-response"}


@pytest.mark.parametrize("name", sorted(HARMLESS))
def test_each_default_quirk_can_be_refused(tmp_path: Path, name: str) -> None:
    assert quirks(tmp_path, f'refuse_quirks = ["{name}"]\n') == HARMLESS - {name}


def test_strict_refuses_all(tmp_path: Path) -> None:
    assert quirks(tmp_path, "strict = true\n") == frozenset()
    assert quirks(tmp_path, 'strict = true\nrefuse_quirks = ["trailing-bytes"]\n') == frozenset()
    assert quirks(tmp_path, "strict = false\n") == HARMLESS


def test_contradictions_and_unknown_names_are_named(tmp_path: Path) -> None:
    got = problems(tmp_path, BASE + '[models.x]\nstrict = true\nquirks = ["trailing-bytes"]\n')
    assert got == [
        "models.x.strict: strict = true refuses every quirk, but quirks lists trailing-bytes: "
        "drop one or the other"
    ]
    got = problems(
        tmp_path,
        BASE + '[models.x]\nquirks = ["trailing-bytes"]\nrefuse_quirks = ["trailing-bytes"]\n',
    )
    assert got == [
        "models.x.refuse_quirks: trailing-bytes is also in quirks: tolerate it or refuse it"
    ]
    got = problems(tmp_path, BASE + '[models.x]\nrefuse_quirks = ["trailing-byte"]\n')
    assert got[0].startswith('models.x.refuse_quirks[0]: "trailing-byte" is not a known quirk')
    assert 'did you mean "trailing-bytes"' in got[0]
    got = problems(tmp_path, BASE + '[models.x]\nstrict = "yes"\n')
    assert got == ['models.x.strict: "yes" is not a boolean (true or false)']


def test_the_session_configuration_carries_the_set(tmp_path: Path) -> None:
    # The core refuses unknown names: what reaches it is exactly the model's set.
    assert core_config(SessionSettings(quirks=frozenset())).ciphered is False
    with pytest.raises(_core.DlmsError, match="not a known quirk"):
        _core.AssociationConfig(quirks=["lenient"])


def test_the_daemon_sessions_get_the_model_quirks(tmp_path: Path) -> None:
    from smmc_gateway.headend.sessions import SessionFactory

    meters = "".join(
        f'[[meters]]\nid = "{m}"\nmodel = "{model}"\n'
        'connection = { kind = "tcp", host = "h", port = 4059 }\n'
        for m, model in (("a", "x"), ("b", "default"))
    )
    body = BASE + meters + '[models.x]\nrefuse_quirks = ["trailing-bytes"]\n'
    cfg = load_config(write(tmp_path, body))
    factory = SessionFactory(models=cfg.models)
    by_id = {m.id: m for m in cfg.meters}
    assert factory.settings(by_id["a"]).quirks == HARMLESS - {"trailing-bytes"}
    assert factory.settings(by_id["b"]).quirks == HARMLESS


@pytest.mark.parametrize(("flag", "expected"), [((), HARMLESS), (("--strict",), frozenset())])
def test_the_meter_command_tolerates_by_default_and_has_strict(
    flag: tuple[str, ...], expected: frozenset[str], tmp_path: Path
) -> None:
    from smmc_gateway.cli import build_parser
    from smmc_gateway.cli.meter_session import build

    argv = [
        "meter",
        "--tcp",
        "127.0.0.1:4059",
        "--ic-store",
        str(tmp_path / "ic.sqlite"),
        *flag,
        "get",
        "8/0.0.1.0.0.255/2",
    ]
    _transport, settings, _target = build(build_parser().parse_args(argv))
    assert settings.quirks == expected
