"""The `docker` marker: tests that build and run the images with a private Docker engine (root only)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "docker: builds and runs the images with a private Docker engine; needs root (-m 'not docker')"
    )
