"""Shared fixtures: the real footage beside the checkout (``../shared/data``), skipped when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DAVIS_DEV = SHARED_DATA / "davis-dev"
VIDEOS = SHARED_DATA / "videos"


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
