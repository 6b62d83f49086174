"""The skeleton overlay draws bones between known joints, skips lost ones, and leaves its input alone."""

from __future__ import annotations

import numpy as np
import pytest

from ino.data.jhmdb import N_JOINTS, SKELETON
from ino.errors import InoError
from ino.utils.pose_overlay import BONE_COLOURS, draw_skeleton


def test_bones_are_drawn_between_their_joints_and_lost_joints_are_skipped() -> None:
    frame = np.zeros((100, 120, 3), dtype=np.uint8)
    joints = np.full((N_JOINTS, 2), np.nan)
    joints[1], joints[0] = (20.0, 80.0), (20.0, 20.0)  # belly and neck: bone 0, vertical at x = 20
    joints[14] = (100.0, 50.0)  # left ankle alone: its knee is lost, so only its dot
    drawn = draw_skeleton(frame, joints, thickness=2)
    assert not frame.any()  # the input is untouched
    assert tuple(drawn[50, 20]) == BONE_COLOURS[SKELETON.index((1, 0))]
    assert drawn[50, 100].any() and not drawn[50, 60].any()
    assert not drawn[:, 40:90].any()  # nothing between the trunk and the lone ankle
    truth = joints.copy()
    truth[14] = (100.0, 20.0)
    assert draw_skeleton(frame, joints, truth, thickness=2)[12:28, 92:108].any()  # a ring at the true ankle


def test_wrong_shapes_are_one_clear_error() -> None:
    with pytest.raises(InoError, match=r"needs an \(H, W, 3\) frame and \(15, 2\) joints"):
        draw_skeleton(np.zeros((10, 10), np.uint8), np.zeros((15, 2)))
