"""Protocol cards say what was run, in words that follow the configuration; quoted rows carry source and protocol."""

from __future__ import annotations

import dataclasses

import pytest

from ino.propagation.presets import get_preset, resolve_config
from ino.suite.cards import changed_from_preset, protocol_card, resolution_rule
from ino.suite.published import CONTEXT_ROWS, context_rows
from ino.suite.tasks import TASKS

BACKBONE = {"arch": "vit_small", "patch_size": 8, "source": "random(seed=0)"}


def test_a_card_follows_the_configuration_and_names_every_change_from_the_preset() -> None:
    config = resolve_config("dino-davis", radius=20, feature_dtype="bfloat16")
    card = protocol_card(TASKS["davis"], "dino-davis", config, BACKBONE)
    assert card["changed from the preset"] == "radius: 12 -> 20; feature_dtype: float32 -> bfloat16"
    assert (
        card["radius"].startswith("20 feature cells") and card["context"] == "the first frame + the 7 previous frames"
    )
    assert card["backbone layer"] == "patch tokens of block 11 (0-based) + the final norm"
    assert card["checkpoint key"].startswith("teacher") and card["first-frame labels to the grid"] == "nearest"
    assert card["preset"].startswith("dino-davis: DINO (Caron et al., ICCV 2021)")
    assert card["resolution rule"].startswith("short side 480, long side scaled and floored to a multiple of 64")
    assert changed_from_preset("ino-davis", get_preset("ino-davis")) == []
    speed_only = dataclasses.replace(get_preset("ino-davis"), chunk_size=7)
    assert changed_from_preset("ino-davis", speed_only) == []  # the tile size changes no mask


def test_the_youtube_vos_rule_names_its_size_overrides() -> None:
    rule = resolution_rule(get_preset("ino-ytvos"))
    assert rule == "native size, each side floored to a multiple of 8; 1920x1080 -> 1280x720; 1920x816 -> 1280x720"


def test_a_card_names_the_references_rule_and_their_size_rules() -> None:
    card = protocol_card(TASKS["davis"], "cropmae-davis", get_preset("cropmae-davis"), BACKBONE)
    assert card["preset"].startswith("cropmae-davis: CropMAE (Eymaël et al., ECCV 2024)")
    assert card["resolution rule"] == "every frame resized to 880x480 (squashed: the aspect ratio is not kept)"
    assert card["radius"] == "20 feature cells (disk window, distance < 20; the first frame is not windowed)"
    assert "copies of the first frame" in card["context"] and "exactly k" in card["top-k"]
    assert card["backbone layer"] == "patch tokens of the last block + the final norm"
    assert card["resizing"] == "frames by cv2 bilinear on float32 pixels; masks back to the frame size by cv2 nearest"
    rule = resolution_rule(get_preset("cropmae-vip"))
    assert rule == "long side 880, short side scaled and floored to a multiple of 64 (a resize, no crop)"


@pytest.mark.parametrize("row", CONTEXT_ROWS, ids=lambda r: f"{r.task}-{r.method}-{r.backbone}-{r.trained_on}")
def test_every_quoted_row_has_its_source_protocol_and_the_task_s_metrics(row) -> None:
    task = TASKS[row.task]
    assert row.metrics and set(row.metrics) <= set(task.metrics)
    assert all(0 < value < 100 for value in row.metrics.values())
    assert row.url.startswith("https://") and row.source and row.protocol and row.decimals >= 1
    assert row in context_rows(row.task)
