"""The VIP_Fine reader: videos from VIP's and CRW's list files, key frames, and one clear error per bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ino.data.synthetic_vip import SynthVipConfig, write_vip_benchmark
from ino.data.vip import (
    VipLayout,
    parse_video_list,
    read_category_ids,
    read_prediction_ids,
    write_category_ids,
)
from ino.errors import InoError

CONFIG = SynthVipConfig(height=40, width=64, frames=11)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vip") / "VIP_Fine"
    write_vip_benchmark(root, videos=3, config=CONFIG, seed=1)
    return root


@pytest.fixture
def root(pristine, tmp_path) -> Path:
    copy = tmp_path / "VIP_Fine"
    shutil.copytree(pristine, copy)
    return copy


def test_videos_frames_and_key_frames(pristine) -> None:
    layout = VipLayout(pristine)
    assert layout.videos() == ["videos1", "videos2", "videos3"]
    video = layout.video("videos1")
    assert [p.name for p in video.frames] == [f"{t:012d}.jpg" for t in range(1, 12)]
    assert video.annotated == ("000000000001", "000000000006", "000000000011")
    assert video.first_annotated == "000000000001" and video.propagated_frames() == video.frames
    single = layout.video("videos3")  # the video with one annotated frame
    assert single.annotated == ("000000000001",) and len(single.frames) == 11


def test_frames_sort_by_number_and_propagation_starts_at_the_first_annotation(root) -> None:
    images, labels = root / "Images" / "videos1", root / "Annotations" / "Category_ids" / "videos1"
    (images / "000000000001.jpg").rename(images / "1.jpg")  # unpadded names still sort as numbers
    (images / "000000000006.jpg").rename(images / "10.jpg")
    (labels / "000000000001.png").unlink()
    (labels / "000000000006.png").rename(labels / "10.png")
    video = VipLayout(root).video("videos1")
    assert [p.stem for p in video.frames][:3] == ["1", "000000000002", "000000000003"]
    assert video.frames[-2].stem == "10" and video.annotated == ("10", "000000000011")
    assert [p.stem for p in video.propagated_frames()] == ["10", "000000000011"]


def test_without_a_list_every_annotated_video_in_numeric_order(root) -> None:
    (root / "lists" / "val_videos.txt").unlink()
    shutil.copytree(root / "Images" / "videos2", root / "Images" / "videos10")
    shutil.copytree(
        root / "Annotations" / "Category_ids" / "videos2", root / "Annotations" / "Category_ids" / "videos10"
    )
    assert VipLayout(root).videos() == ["videos1", "videos2", "videos3", "videos10"]


def test_the_flattened_category_ids_layout_is_read_too(root) -> None:
    shutil.move(root / "Annotations" / "Category_ids", root / "Category_ids")
    layout = VipLayout(root)
    assert layout.annotation_root == root / "Category_ids"
    assert len(layout.video("videos2").annotated) == 3


def test_list_files_in_vip_and_crw_formats(tmp_path) -> None:
    names = tmp_path / "val_videos.txt"
    names.write_text("videos338\n\nVIP_Fine/Images/videos37/\n")
    assert parse_video_list(names) == ["videos338", "videos37"]
    crw = tmp_path / "vip_vallist.txt"  # CropMAE's downstreams/propagation/vip_vallist.txt lines
    crw.write_text("datasets/VIP/Images/videos338 datasets/VIP/Annotations/Category_ids/videos338\n")
    assert parse_video_list(crw) == ["videos338"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("videos1\nvideos1 a b\n", r"line 2: expected a video name or '<image folder> <annotation folder>'"),
        ("Images/videos1 Category_ids/videos2\n", r"line 1: the image folder 'Images/videos1' and annotation folder"),
        ("videos1\nvideos2\nvideos1\n", r"line 3: video 'videos1' is listed twice \(first on line 1\)"),
        ("\n  \n", r"the video list is empty"),
        ("/\n", r"line 1: no video name"),
    ],
)
def test_each_bad_list_line_is_one_error_naming_the_list_and_line(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "val_videos.txt"
    path.write_text(text)
    with pytest.raises(InoError, match=rf"val_videos\.txt.*{message}"):
        parse_video_list(path)


def test_a_listed_video_without_its_folders_is_named(root) -> None:
    (root / "lists" / "val_videos.txt").write_text("videos1\nvideos9\n")
    with pytest.raises(InoError, match=r"video 'videos9': no folder .*Images/videos9"):
        VipLayout(root).videos()
    with pytest.raises(InoError, match=r"val_videos\.txt\.missing: video list not found"):
        VipLayout(root).videos(list_file=root / "lists" / "val_videos.txt.missing")


def test_an_annotation_whose_frame_is_missing(tmp_path) -> None:
    root = tmp_path / "VIP_Fine"
    write_vip_benchmark(root, videos=2, config=SynthVipConfig(height=40, width=64, frames=6, missing_frame=True))
    with pytest.raises(
        InoError, match=r"video 'videos1': annotation .*000000000006\.png has no frame .*000000000006\.jpg"
    ):
        VipLayout(root).video("videos1")


def test_an_annotation_of_another_size_than_its_frame(root) -> None:
    path = root / "Annotations" / "Category_ids" / "videos2" / "000000000006.png"
    write_category_ids(path, np.zeros((40, 65), dtype=np.uint8))
    with pytest.raises(InoError, match=r"000000000006\.png is 65x40 \(WxH\) but its frame .* is 64x40"):
        VipLayout(root).video("videos2")


def test_an_unreadable_annotation_is_named(root) -> None:
    path = root / "Annotations" / "Category_ids" / "videos2" / "000000000011.png"
    path.write_bytes(b"not a png")
    with pytest.raises(InoError, match=r"000000000011\.png: cannot read the annotation PNG"):
        VipLayout(root).video("videos2")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(InoError, match=r"000000000011\.png: cannot read"):
        read_category_ids(path)


def test_class_ids_above_19_are_named_and_255_is_unlabelled(tmp_path) -> None:
    ids = np.zeros((4, 5), dtype=np.uint8)
    ids[0, 0], ids[1, 1], ids[2, 2] = 19, 255, 23
    write_category_ids(tmp_path / "bad.png", ids)
    with pytest.raises(InoError, match=r"bad\.png: class id 23 is not a VIP part class \(0\.\.19, or 255\)"):
        read_category_ids(tmp_path / "bad.png")
    ids[2, 2] = 0
    write_category_ids(tmp_path / "good.png", ids)
    np.testing.assert_array_equal(read_category_ids(tmp_path / "good.png"), ids)


def test_ground_truth_png_forms(tmp_path) -> None:
    ids = np.arange(20, dtype=np.uint8).reshape(4, 5)
    palette = Image.fromarray(ids, mode="P")
    palette.putpalette([255 - v for v in range(256)] * 3)
    palette.save(tmp_path / "palette.png")  # palette PNGs are read by index, as PIL gives eval_vip.py
    np.testing.assert_array_equal(read_category_ids(tmp_path / "palette.png"), ids)
    Image.fromarray(ids.astype(np.uint16)).save(tmp_path / "sixteen.png")
    np.testing.assert_array_equal(read_category_ids(tmp_path / "sixteen.png"), ids)
    Image.fromarray(np.stack([ids] * 3, axis=-1)).save(tmp_path / "rgb.png")
    with pytest.raises(InoError, match=r"rgb\.png: a category-id annotation must be a single-channel PNG"):
        read_category_ids(tmp_path / "rgb.png")


def test_prediction_png_forms(tmp_path) -> None:
    ids = np.arange(20, dtype=np.uint8).reshape(4, 5)
    Image.fromarray(np.stack([ids] * 3, axis=-1)).save(tmp_path / "grey-rgb.png")  # CRW's 3-column label set
    np.testing.assert_array_equal(read_prediction_ids(tmp_path / "grey-rgb.png"), ids)
    colour = np.stack([ids, ids, ids + 1], axis=-1)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(InoError, match=r"colour\.png: an RGB prediction whose channels differ"):
        read_prediction_ids(tmp_path / "colour.png")
    write_category_ids(tmp_path / "void.png", np.full((2, 2), 255, dtype=np.uint8))
    with pytest.raises(InoError, match=r"void\.png: predicted class id 255 is not a VIP part class"):
        read_prediction_ids(tmp_path / "void.png")
    with Image.open(tmp_path / "void.png") as image:
        assert image.mode == "L"  # written grayscale: eval_vip.py decodes a palette PNG into its colours
