"""A gateway configuration for a simulated fleet (the demo, tests and bench/fleet.py).

Given the simulator's ``--json`` listing (one entry per meter with its port and
keys), writes ``gateway.toml``, a 0600 key file and a meters CSV (so a thousand
meters stay a small file) into a directory, and returns the TOML path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def write_lab_config(
    directory: Path,
    meters: Sequence[Mapping[str, Any]],
    *,
    broker: tuple[str, int],
    gateway_id: str = "gw-demo",
    groups: Mapping[str, str] | None = None,
    max_tcp_sessions: int = 32,
    metrics_port: int | None = None,
    schedules: str = "",
    response_timeout: str = "5s",
    push_port: int | None = None,
    enable: Sequence[str] = (),
    extra: str = "",
) -> Path:
    """``meters``: dicts with ``meter_id``, ``port`` (wrapper TCP on 127.0.0.1), ``ek``,
    ``ak`` (hex) and ``auth``; ``groups``: meter_id -> ``;``-separated group names.
    ``enable``: nouns (or ``keyChange``) that are off by default and this lab turns on
    (``[commands.enabled]``); ``extra``: more TOML appended as is (e.g. a ``[commands]``
    table: then ``enable`` must be empty)."""
    directory.mkdir(parents=True, exist_ok=True)
    state = directory / "state"
    state.mkdir(exist_ok=True)
    keys = directory / "meter-keys.toml"
    lines = []
    rows = [
        "id,model,kind,host,port,framing,bus,device,client,server_logical,server_physical,"
        "address_size,security,key_id,key_file,groups"
    ]
    for m in meters:
        mid = str(m["meter_id"])
        auth = str(m.get("auth", "hls-gmac"))
        key_id = ""
        if auth == "hls-gmac":
            key_id = f"k-{mid}"
            lines += [f'["{key_id}"]', f'ek = "{m["ek"]}"', f'ak = "{m["ak"]}"']
            if m.get("system_title"):
                lines.append(f'system_title = "{m["system_title"]}"')
            lines.append("")
        elif auth == "lls":
            key_id = f"k-{mid}"
            lines += [f'["{key_id}"]', f'password = "{m["password"]}"', ""]
        grp = (groups or {}).get(mid, "")
        rows.append(
            f"{mid},default,tcp,127.0.0.1,{m['port']},wrapper,,,1,1,,,{auth},{key_id},,{grp}"
        )
    fd = os.open(keys, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(keys, 0o600)
    (directory / "meters.csv").write_text("\n".join(rows) + "\n")
    push = (
        f'[push]\naddress = "127.0.0.1"\nport = {push_port}\n'
        if push_port
        else "[push]\nenabled = false\n"
    )
    metrics = (
        f'[metrics]\naddress = "127.0.0.1"\nport = {metrics_port}\n'
        if metrics_port
        else "[metrics]\nenabled = false\n"
    )
    enabled = "".join(f"{name} = true\n" for name in enable)
    commands = f"[commands.enabled]\n{enabled}" if enabled else ""
    toml = f"""# generated for a simulated fleet
meters_csv = "meters.csv"

[gateway]
id = "{gateway_id}"
state_dir = "{state}"
key_file = "{keys}"
client_system_title = "534d4d4300000001"

[broker]
host = "{broker[0]}"
port = {broker[1]}
keepalive = 30

[schedules]
{schedules}

[limits]
max_tcp_sessions = {max_tcp_sessions}
response_timeout = "{response_timeout}"

{push}
{metrics}
[logging]
level = "info"
format = "json"

{commands}
{extra}
"""
    path = directory / "gateway.toml"
    path.write_text(toml)
    return path
