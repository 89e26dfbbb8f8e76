"""docs/asyncapi.yaml agrees with the code: its channels are the topics the uplink uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from smmc_gateway.uplink.topics import Topics

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_asyncapi_channels_and_refs() -> None:
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    t = Topics("{gateway}")
    expected = {
        t.status(),
        t.readings("{meter}"),
        t.events("{meter}"),
        t.config("{meter}"),
        t.linkage("{meter}"),
        t.bulk_readings(),
        t.command("{noun}"),
        t.reply("{correlationId}"),
    }
    assert set(doc["channels"]) == expected
    refs: list[str] = []

    def walk(x: object) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                if k == "$ref" and isinstance(v, str) and v.startswith("./"):
                    refs.append(v)
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(doc)
    assert refs and all((DOCS / r).is_file() for r in refs)
    # every schema file is referenced from the contract, except the reply block (in envelope)
    on_disk = {f"./schemas/{p.name}" for p in (DOCS / "schemas").glob("*.schema.json")}
    assert on_disk - set(refs) == {"./schemas/reply.schema.json"}
