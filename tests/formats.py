"""The real records of the original data formats, in the shared/ folder that sits beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

FORMATS = Path(__file__).resolve().parents[1].parent / "shared" / "formats"


def formats_path(name: str) -> Path:
    """A file or folder of shared/formats; fails the test, with what is missing, when it is not there."""
    path = FORMATS / name
    if not path.exists():
        pytest.fail(f"missing {path}: the shared/ folder with the original-format samples must sit beside the repo")
    return path
