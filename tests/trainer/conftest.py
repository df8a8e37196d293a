"""Shared trainer fixtures: one tiny Qwen2 model and tokenizer per test session, built locally, and a BabyAI server
with the oracle enabled per test module."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainer.tiny import make_tiny

    return make_tiny(tmp_path_factory.mktemp("tiny") / "model", envs=["babyai"], seed=0, vocab_size=1024,
                     size="tiny")


@pytest.fixture(scope="module")
def babyai_server():
    from env_server.runtime import Limits
    from tests.servers import ServerThread

    with ServerThread("babyai", Limits(enable_oracle=True)) as running:
        yield running


@pytest.fixture(scope="module")
def tiny_engine(tiny_model_dir: Path):
    """A transformers engine on the tiny model, for tests that read it; tests that train build their own."""
    from trainer.policies.hf import HFEngine

    engine = HFEngine.from_pretrained(str(tiny_model_dir))
    yield engine
    engine.close()
