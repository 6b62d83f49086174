"""DAVIS layout reading, mask normalisation and palette PNG writing."""

from __future__ import annotations

import io
import itertools
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from ino.data import davis
from ino.data.davis import PNG_SIGNATURE, DavisLayout, davis_palette, read_frame, read_mask, write_mask
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


# --- mask PNG decoding: the direct path (_decode_plain_png) against what the ids are, whoever wrote the file ---


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _filtered(rows: np.ndarray, kinds: list[int]) -> bytes:
    """PNG scanlines of an 8-bit one-channel image, row i filtered with kinds[i % len(kinds)] (0-4)."""
    out = bytearray()
    previous = np.zeros(rows.shape[1], np.int64)
    for index, row in enumerate(rows.astype(np.int64)):
        kind = kinds[index % len(kinds)]
        left = np.concatenate([[0], row[:-1]])
        upper_left = np.concatenate([[0], previous[:-1]])
        if kind == 4:
            p = left + previous - upper_left
            pa, pb, pc = abs(p - left), abs(p - previous), abs(p - upper_left)
            predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, previous, upper_left))
        else:
            predictor = [np.zeros_like(row), left, previous, (left + previous) // 2][kind]
        out += bytes([kind]) + ((row - predictor) % 256).astype(np.uint8).tobytes()
        previous = row
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def _handmade_png(ids: np.ndarray, colour: int, kinds: list[int], interlaced: bool = False, parts: int = 1) -> bytes:
    """An 8-bit palette (colour 3) or grayscale (0) PNG written byte by byte, optionally Adam7-interlaced, its
    stream split over ``parts`` IDAT chunks."""
    height, width = ids.shape
    if interlaced:
        passes = [ids[y0::dy, x0::dx] for x0, y0, dx, dy in ADAM7]
        stream = b"".join(_filtered(p, kinds) for p in passes if p.size)
    else:
        stream = _filtered(ids, kinds)
    compressed = zlib.compress(stream)
    cuts = np.linspace(0, len(compressed), parts + 1).astype(int)
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, int(interlaced))
    palette = _chunk(b"PLTE", davis_palette().tobytes()) if colour == 3 else b""
    idat = b"".join(_chunk(b"IDAT", compressed[a:b]) for a, b in itertools.pairwise(cuts))
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + palette + idat + _chunk(b"IEND", b"")


def _mask_like(rng: np.random.Generator, height: int = 37, width: int = 53, n_ids: int = 4) -> np.ndarray:
    """Rectangles of ids over background, one touching the left and bottom edges."""
    ids = np.zeros((height, width), np.uint8)
    for object_id in range(1, n_ids + 1):
        y, x = rng.integers(0, height - 3), rng.integers(0, width - 3)
        ids[y : y + rng.integers(2, height // 2), x : x + rng.integers(2, width // 2)] = object_id
    ids[-5:, :7] = n_ids
    return ids


def _palette_png(ids: np.ndarray, **options: object) -> bytes:
    image = Image.fromarray(ids, mode="P")
    image.putpalette(davis_palette().ravel().tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _opencv_png(ids: np.ndarray, *params: int) -> bytes:
    ok, encoded = cv2.imencode(".png", ids, list(params))
    assert ok
    return encoded.tobytes()


@pytest.fixture(params=["default inflate", "zlib"])
def inflate(request, monkeypatch):
    """Run each decoding test with the inflater in use (ISA-L where installed) and with zlib, its fallback."""
    if request.param == "zlib":
        monkeypatch.setattr(davis, "_inflate", zlib.decompress)


def _cases() -> list[tuple[str, np.ndarray, bytes, bool]]:
    """(what, ids, PNG bytes, whether the direct path decodes it) for masks written in many ways."""
    rng = np.random.default_rng(5)
    mask = _mask_like(rng)
    noise = rng.integers(0, 256, (29, 41)).astype(np.uint8)  # every byte value: the Sub sums wrap around 256
    wide = _mask_like(rng, 480, 854, 3)
    cases = [
        (f"Pillow palette compress_level={level}", mask, _palette_png(mask, compress_level=level), True)
        for level in (0, 1, 6, 9)
    ]
    cases += [
        ("Pillow palette optimize=True", mask, _palette_png(mask, optimize=True), True),
        ("Pillow palette with transparency", mask, _palette_png(mask, transparency=0), True),
        ("Pillow palette, all 256 ids", noise, _palette_png(noise), True),
        ("Pillow palette 854x480", wide, _palette_png(wide, compress_level=1), True),
        ("OpenCV grayscale (Sub rows)", mask, _opencv_png(mask), True),
        ("OpenCV grayscale noise (Sub rows)", noise, _opencv_png(noise), True),
        ("OpenCV grayscale 854x480", wide, _opencv_png(wide), True),
        ("OpenCV grayscale, empty mask", np.zeros_like(mask), _opencv_png(np.zeros_like(mask)), True),
        ("OpenCV compression 9 (adaptive filters)", noise, _opencv_png(noise, cv2.IMWRITE_PNG_COMPRESSION, 9), None),
        ("OpenCV 16-bit grayscale", mask, _opencv_png(mask.astype(np.uint16)), False),
        ("handmade Sub rows over 3 IDAT chunks", noise, _handmade_png(noise, 0, [1], parts=3), True),
        ("handmade palette, None rows", noise, _handmade_png(noise, 3, [0]), True),
        ("handmade None and Sub rows mixed", noise, _handmade_png(noise, 0, [0, 1]), False),
        ("handmade Up rows", noise, _handmade_png(noise, 3, [2]), False),
        ("handmade Average rows", noise, _handmade_png(noise, 0, [3]), False),
        ("handmade Paeth rows", noise, _handmade_png(noise, 3, [4, 1]), False),
        ("handmade interlaced palette", noise, _handmade_png(noise, 3, [0], interlaced=True), False),
        ("handmade interlaced grayscale, Sub", mask, _handmade_png(mask, 0, [1], interlaced=True), False),
    ]
    for bits in (1, 2, 4):
        small = mask % (1 << bits)
        cases.append((f"Pillow {bits}-bit palette", small, _palette_png(small, bits=bits), False))
    for kind, flag in [("NONE", 0), ("SUB", 1), ("UP", 2), ("AVG", 3), ("PAETH", 4)]:
        if hasattr(cv2, f"IMWRITE_PNG_FILTER_{kind}"):
            data = _opencv_png(mask, cv2.IMWRITE_PNG_FILTER, getattr(cv2, f"IMWRITE_PNG_FILTER_{kind}"))
            cases.append((f"OpenCV filter {kind}", mask, data, flag in (0, 1)))
    return cases


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case[0])
def test_every_way_of_writing_a_mask_reads_back_the_same_ids(case, inflate, tmp_path):
    """The direct path decodes the common forms, hands every other one to Pillow, and both give the ids."""
    what, ids, data, direct = case
    path = tmp_path / "mask.png"
    path.write_bytes(data)
    with Image.open(path) as image:  # the file is a valid PNG of these ids, for Pillow too
        np.testing.assert_array_equal(np.array(image), ids)
    if direct is not None:
        assert (davis._decode_plain_png(data) is not None) == direct, what
    np.testing.assert_array_equal(read_mask(path), ids)


def test_opencv_binary_masks_read_as_object_one(inflate, tmp_path):
    ids = _mask_like(np.random.default_rng(6)) > 0
    (tmp_path / "davis2016.png").write_bytes(_opencv_png(ids.astype(np.uint8) * 255))
    assert davis._decode_plain_png((tmp_path / "davis2016.png").read_bytes()) is not None
    np.testing.assert_array_equal(read_mask(tmp_path / "davis2016.png"), ids.astype(np.uint8))


def test_damaged_pngs_are_read_or_refused_as_pillow_does(inflate, tmp_path):
    """Damage is left to Pillow: a wrong checksum alone it reads (as before), a damaged stream it refuses."""
    ids = _mask_like(np.random.default_rng(7))
    data = bytearray(_palette_png(ids))
    start = data.index(b"IDAT") + 4
    (length,) = struct.unpack_from(">I", data, start - 8)
    data[start + length] ^= 0xFF  # the IDAT chunk's CRC
    assert davis._decode_plain_png(bytes(data)) is None
    (tmp_path / "crc.png").write_bytes(bytes(data))
    np.testing.assert_array_equal(read_mask(tmp_path / "crc.png"), ids)
    data = bytearray(_palette_png(ids))
    data[start + length // 2] ^= 0x55  # the stream itself, under a CRC that matches: zlib's Adler-32 fails
    data[start + length : start + length + 4] = struct.pack(">I", zlib.crc32(bytes(data[start - 4 : start + length])))
    assert davis._decode_plain_png(bytes(data)) is None
    (tmp_path / "stream.png").write_bytes(bytes(data))
    with pytest.raises(InoError, match=r"stream\.png: cannot read image"):
        read_mask(tmp_path / "stream.png")
    (tmp_path / "cut.png").write_bytes(_opencv_png(ids)[:60])
    with pytest.raises(InoError, match=r"cut\.png: cannot read image"):
        read_mask(tmp_path / "cut.png")


def test_real_davis_masks_decode_as_pillow_decodes_them(davis_dev, inflate):
    for path in sorted((davis_dev / "Annotations" / "480p").glob("*/0000[05].png")):
        data = path.read_bytes()
        with Image.open(path) as image:
            expected = np.array(image)
        decoded = davis._decode_plain_png(data)
        assert decoded is not None and decoded[1] == "P"
        np.testing.assert_array_equal(decoded[0], expected)
