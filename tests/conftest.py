"""Shared fixtures: the real footage beside the checkout (``../shared/data``), skipped when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DAVIS_DEV = SHARED_DATA / "davis-dev"
VIDEOS = SHARED_DATA / "videos"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, give each worker its share of the cores: N workers x all-core torch oversubscribes."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(scope="session")
def davis_dev() -> Path:
    """The 6-sequence labelled DAVIS dev set; tests using it skip on a clone without ``../shared/data``."""
    if not (DAVIS_DEV / "Annotations" / "480p").is_dir():
        pytest.skip(f"real DAVIS data not found at {DAVIS_DEV}")
    return DAVIS_DEV


@pytest.fixture(scope="session")
def videos_dir() -> Path:
    """The 33 unlabeled real mp4 clips; tests using it skip when absent."""
    if not VIDEOS.is_dir():
        pytest.skip(f"real videos not found at {VIDEOS}")
    return VIDEOS
