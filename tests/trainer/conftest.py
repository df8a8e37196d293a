"""Shared trainer fixtures: one tiny Qwen2 model and tokenizer per test session, built locally."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainer.tiny import make_tiny

    return make_tiny(tmp_path_factory.mktemp("tiny") / "model", envs=["babyai"], seed=0, vocab_size=1024,
                     size="tiny")
