"""``ino propagate --scale-size``: any short side runs (floored to the patch multiple); a bad one is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ino.cli import main
from ino.data.davis import DavisLayout, read_mask
from ino.data.synthetic import SynthConfig, write_benchmark

RANDOM_TINY = ["--checkpoint", "random", "--arch", "vit_tiny", "--radius", "2", "--quiet"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    write_benchmark(root, sequences=1, config=SynthConfig(height=96, width=160, frames=3), seed=3)
    return root


@pytest.mark.parametrize(("patch", "scale"), [(16, "120"), (8, "122")])
def test_a_short_side_off_the_patch_multiple_runs(synth: Path, tmp_path: Path, capsys, patch: int, scale: str) -> None:
    out = tmp_path / "out"
    args = ["--davis-root", str(synth), "--out", str(out), "--scale-size", scale, "--patch-size", str(patch)]
    code = main(["propagate", *args, *RANDOM_TINY])
    assert code == 0, capsys.readouterr().err
    name = DavisLayout(synth).sequences()[0]
    assert all(read_mask(png).shape == (96, 160) for png in (out / name).glob("*.png"))


@pytest.mark.parametrize(
    ("scale", "patch", "expected"),
    [
        ("0", 16, "--scale-size must be a short side in pixels or -1 for the native size, got 0"),
        ("-3", 8, "--scale-size must be a short side in pixels or -1 for the native size, got -3"),
        ("10", 16, "--scale-size 10 is smaller than the backbone's patch size 16: give at least 16"),
    ],
)
def test_a_bad_scale_size_is_one_line_naming_the_flag(synth: Path, tmp_path: Path, capsys, scale, patch, expected):
    out = tmp_path / "out"
    args = ["--davis-root", str(synth), "--out", str(out), "--scale-size", scale, "--patch-size", str(patch)]
    code = main(["propagate", *args, *RANDOM_TINY])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and err.count("\n") == 1 and "short_side" not in err
    assert not out.exists()


def test_the_reference_rule_settings_are_flags_over_any_preset(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from ino.cli import build_parser, main
    from ino.commands.propagate import _config

    argv = ["propagate", "--davis-root", "d", "--checkpoint", "random", "--out", "o", "--window", "disk",
            "--window-first-frame", "false", "--pad-context", "yes", "--topk-ties", "exact", "--feature-block", "-1",
            "--feature-dtype", "float32"]  # fmt: skip
    preset, config = _config(build_parser().parse_args(argv), torch.device("cpu"))
    assert preset == "ino-davis" and config.temperature == 0.1  # the rest stays the preset's
    assert (config.window, config.window_first_frame, config.pad_context, config.topk_ties) == (
        "disk", False, True, "exact"
    )  # fmt: skip
    assert config.feature_block == -1
    assert main([*argv[:-6], "--pad-context", "maybe"]) == 2
    err = capsys.readouterr().err
    assert "argument --pad-context: expected true or false, got 'maybe'" in err and err.count("\n") == 1
