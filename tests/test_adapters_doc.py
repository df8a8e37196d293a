"""docs/adapters.md is generated from the code; this fails when it is stale."""

from __future__ import annotations

from pathlib import Path

from env_server import registry
from env_server.adapters.doc import document

DOC = Path(__file__).resolve().parents[1] / "docs" / "adapters.md"


def test_the_adapter_document_is_current():
    expected = document([registry.load(name) for name in registry.names()])
    assert DOC.read_text() == expected, "stale: run `python -m env_server adapters-doc --write docs/adapters.md`"
