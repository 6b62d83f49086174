"""Training configurations: presets by name, stacking, ``base``, overrides, one validation path, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ino.cli import build_parser
from ino.commands.train import overrides
from ino.configs.loading import load_config, preset_names, read_config
from ino.configs.schema import AugmentConfig, TrainConfig
from ino.errors import InoError


def test_every_shipped_preset_loads_and_names_are_what_config_accepts() -> None:
    names = preset_names()
    assert {"ino-charades", "ino-kinetics", "tiny", "demo", "ablations/loss-out-mim", "ablations/paper-variant"} <= set(
        names
    )
    for name in names:
        assert isinstance(load_config([name]), TrainConfig), name


def test_demo_builds_on_tiny_and_changes_only_its_two_measured_departures() -> None:
    tiny, demo = load_config(["tiny"]).to_dict(), load_config(["demo"]).to_dict()
    changed = {
        f"{group}.{key}"
        for group, values in tiny.items()
        if isinstance(values, dict)
        for key, value in values.items()
        if demo[group][key] != value
    }
    assert changed == {"clips.target_fps", "augment.jitter_p", "augment.grayscale_p", "augment.blur_p", "run.keep_last"}
    assert demo["clips"]["target_fps"] == 25.0 and demo["model"]["arch"] == "vit_tiny"


def test_later_sources_and_overrides_win_key_by_key(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("optim: {base_lr: 0.5}\nmasking: {ratio: [0.2, 0.3]}\n")
    config = load_config(["ino-charades", "ablations/paper-variant", mine], {"optim": {"epochs": 7}})
    assert config.optim.base_lr == 0.5 and config.optim.epochs == 7 and config.optim.warmup_epochs == 5
    assert config.masking.mode == "block" and config.masking.ratio == (0.2, 0.3)  # lists become tuples
    assert config.model.arch == "vit_small"
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_a_base_may_be_a_list_and_a_cycle_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(f"base: [tiny, {tmp_path / 'b.yaml'}]\nrun: {{seed: 4}}\n")
    (tmp_path / "b.yaml").write_text("loss: {w_aff: 0.0}\n")
    config = load_config([tmp_path / "a.yaml"])
    assert config.model.arch == "vit_tiny" and config.loss.w_aff == 0.0 and config.run.seed == 4
    assert "base" not in read_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text(f"base: {tmp_path / 'd.yaml'}\n")
    (tmp_path / "d.yaml").write_text(f"base: {tmp_path / 'c.yaml'}\n")
    with pytest.raises(InoError, match="forms a cycle"):
        load_config([tmp_path / "c.yaml"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("optim: {base_lr: [1}", "bad.yaml:1:20: not valid YAML (while parsing a flow sequence: expected ','"),
        ("optim:\n  base_lr: 1e-3\n   epochs: 3\n", "bad.yaml:3:10: not valid YAML (mapping values are not allowed"),
        ("- a list", "must be a mapping"),
        ("optim: {base_rate: 1.0}", "unknown setting(s) optim.base_rate"),
        ("optimiser: {}", "unknown setting 'optimiser'"),
        ("optim: 3", "optim must be a mapping"),
        ("optim: {batch_size: 2.5}", "optim.batch_size must be an integer, got 2.5"),
        ("optim: {warmup_epochs: 9, epochs: 3}", "optim.warmup_epochs must not exceed optim.epochs"),
        ("masking: {ratio: [0.5, 0.1]}", "masking.ratio must be a pair with 0 < lo <= hi < 1"),
        ("clips: {clip_len: 3}", "clips.clip_len must be even and >= 2"),
        ("loss: {w_out: 0, w_mim: 0, w_aff: 0}", "at least one of loss.w_out"),
        ("augment: {jitter: [0.4, 0.4]}", "augment.jitter must be a list of 4 numbers"),
        ("model: {arch: vit_huge}", "model.arch must be one of"),
        ("run: {log_every: 0}", "run.log_every must be >= 1, got 0"),
        ("optim: {base_lr: .nan}", "optim.base_lr must be a number"),
    ],
)
def test_bad_settings_name_the_file_and_the_setting(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n")
    with pytest.raises(InoError) as caught:
        load_config(["tiny", path])
    assert message in str(caught.value) and (str(path) in str(caught.value) or "bad.yaml" in str(caught.value))
    assert "\n" not in str(caught.value)


def test_an_unknown_preset_lists_the_names() -> None:
    with pytest.raises(InoError, match=r"--config ino-charade: no such file or preset \(presets: ablations/"):
        load_config(["ino-charade"])


def test_edited_configurations_are_validated_again() -> None:
    config = load_config(["tiny"])
    config.optim.batch_size = 0
    with pytest.raises(InoError, match=r"optim\.batch_size must be >= 1"):
        config.validate()
    with pytest.raises(InoError, match=r"augmentation configuration: augment\.flip_p must be in"):
        AugmentConfig(flip_p=1.5)


def test_command_line_overrides_use_dashes_yaml_values_and_choices() -> None:
    argv = ["train", "--config", "tiny", "--masking.ratio", "[0.2, 0.3]", "--run.max-steps", "null"]
    argv += ["--run.eval-sequences", "dog,cat", "--run.eval-davis-root", "123", "--loss.w-aff", "0", "--data", "v"]
    argv += ["--optim.base-lr", "1e-3"]  # YAML 1.1 reads this as text; a number setting takes it as 0.001
    args = build_parser().parse_args(argv)
    nested = overrides(args)
    assert nested == {
        "masking": {"ratio": [0.2, 0.3]},
        "run": {"max_steps": None, "eval_sequences": "dog,cat", "eval_davis_root": "123"},
        "loss": {"w_aff": 0},
        "optim": {"base_lr": "1e-3"},
        "data": ["v"],
    }
    config = load_config(args.config, nested)
    assert config.masking.ratio == (0.2, 0.3) and config.loss.w_aff == 0.0 and config.run.eval_davis_root == "123"
    assert config.optim.base_lr == 0.001
