"""DAVIS layout reading, mask normalisation and palette PNG writing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ino.data.davis import DavisLayout, davis_palette, read_frame, read_mask, write_mask
from ino.errors import InoError


def test_palette_starts_with_the_davis_colours():
    palette = davis_palette()
    assert palette.shape == (256, 3)
    expected = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128), (0, 128, 128)]
    assert [tuple(c) for c in palette[:7]] == expected
    assert tuple(palette[7]) == (128, 128, 128) and tuple(palette[8]) == (64, 0, 0)
    assert len({tuple(c) for c in palette}) == 256


def test_palette_equals_the_one_in_real_davis_pngs(davis_dev):
    png = next((davis_dev / "Annotations" / "480p" / "surf").glob("*.png"))
    with Image.open(png) as image:
        assert image.mode == "P"
        stored = np.array(image.getpalette()[: 3 * 16]).reshape(-1, 3)
    np.testing.assert_array_equal(stored, davis_palette()[:16])


def test_write_then_read_round_trip(tmp_path):
    ids = np.arange(12 * 7, dtype=np.uint8).reshape(12, 7) % 9
    write_mask(tmp_path / "a" / "00000.png", ids)
    with Image.open(tmp_path / "a" / "00000.png") as image:
        assert image.mode == "P"
    np.testing.assert_array_equal(read_mask(tmp_path / "a" / "00000.png"), ids)
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]


def test_grayscale_binary_rgb_and_bilevel_forms_normalise_to_ids(tmp_path):
    ids = np.zeros((6, 8), dtype=np.uint8)
    ids[1:3, 1:4] = 1
    ids[4:, 5:] = 2
    Image.fromarray(ids, mode="L").save(tmp_path / "gray.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "gray.png"), ids)
    Image.fromarray((ids == 1).astype(np.uint8) * 255, mode="L").save(tmp_path / "davis2016.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "davis2016.png"), (ids == 1).astype(np.uint8))
    Image.fromarray(davis_palette()[ids]).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "rgb.png"), ids)
    Image.fromarray(ids == 2).save(tmp_path / "bilevel.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "bilevel.png"), (ids == 2).astype(np.uint8))


def test_palette_void_is_kept_as_255(tmp_path):
    ids = np.zeros((4, 4), dtype=np.uint8)
    ids[0, 0] = 255
    ids[2, 2] = 1
    write_mask(tmp_path / "void.png", ids)
    np.testing.assert_array_equal(read_mask(tmp_path / "void.png"), ids)


def test_bad_masks_name_the_file(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not a png at all")
    with pytest.raises(InoError, match=r"junk\.png"):
        read_mask(tmp_path / "junk.png")
    with pytest.raises(InoError, match=r"missing\.png: file not found"):
        read_mask(tmp_path / "missing.png")
    rgb = np.zeros((3, 3, 3), dtype=np.uint8)
    rgb[1, 1] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "odd.png")
    with pytest.raises(InoError, match=r"odd.png: RGB mask has colour \(1, 2, 3\)"):
        read_mask(tmp_path / "odd.png")


def _layout_with(tmp_path, names, set_lines=None):
    for name in names:
        write_mask(tmp_path / "Annotations" / "480p" / name / "00000.png", np.zeros((2, 2), np.uint8))
    if set_lines is not None:
        sets = tmp_path / "ImageSets" / "2017"
        sets.mkdir(parents=True)
        (sets / "val.txt").write_text(set_lines)
    return DavisLayout(tmp_path)


def test_sequence_list_from_set_file_or_folders(tmp_path):
    assert _layout_with(tmp_path / "a", ["b", "a"]).sequences() == ["a", "b"]
    assert _layout_with(tmp_path / "b", ["x", "y"], "y\n\n").sequences() == ["y"]


def test_sequence_list_errors(tmp_path):
    with pytest.raises(InoError, match=r"val\.txt: sequence list is empty"):
        _layout_with(tmp_path / "a", ["x"], "\n").sequences()
    with pytest.raises(InoError, match="sequence 'nope': no annotation folder"):
        _layout_with(tmp_path / "b", ["x"], "nope\n").sequences()
    with pytest.raises(InoError, match=r"unknown set 'test-dev' \(available: val\)"):
        _layout_with(tmp_path / "c", ["x"], "x\n").sequences("test-dev")
    with pytest.raises(InoError, match="no such folder"):
        DavisLayout(tmp_path / "nothing").sequences()


def test_real_dev_set_layout(davis_dev):
    layout = DavisLayout(davis_dev)
    names = layout.sequences("val")
    assert set(names) == {"dog-agility", "rollerblade", "motorbike", "surf", "tennis", "hockey"}
    for name in names:
        frames = layout.annotation_frames(name)
        assert len(frames) == len(layout.image_frames(name)) > 10
        first = read_mask(layout.annotation_dir(name) / f"{frames[0]}.png")
        assert first.shape == (480, 854) and set(np.unique(first)) <= {0, 1}


def test_a_truncated_jpeg_frame_is_refused_not_greyed(tmp_path) -> None:
    import cv2
    import numpy as np

    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    whole = tmp_path / "whole.jpg"
    cv2.imwrite(str(whole), image)
    np.testing.assert_array_equal(read_frame(whole), cv2.cvtColor(cv2.imread(str(whole)), cv2.COLOR_BGR2RGB))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(InoError, match=r"cut\.jpg: the JPEG is truncated"):
        read_frame(cut)
