"""Training fixtures: four small textured clips, enough for a tiny run of a few epochs."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.video_factory import write_clip


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    for index in range(4):
        write_clip(folder / f"clip{index}.mp4", frames=36, seed=index)
    return folder
