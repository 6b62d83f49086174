"""Strict backbone loading from every supported file layout, safetensors export and ``ino convert``."""

from __future__ import annotations

import argparse
import json

import pytest
import timm
import torch

from ino.cli import main
from ino.errors import InoError
from ino.models.weights import load_backbone, save_backbone
from support.files import safetensors_metadata


def outputs(model, images):
    with torch.no_grad():
        cls, patches = model.forward_tokens(images)
        return cls, patches, model.patch_features(images)


def assert_same_outputs(model, reference, images):
    for ours, expected in zip(outputs(model, images), outputs(reference, images), strict=True):
        assert torch.equal(ours, expected)


def prefixed(state, prefix, drop_mask_token=False):
    dropped = {"mask_token"} if drop_mask_token else set()
    return {prefix + key: value for key, value in state.items() if key not in dropped}


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 32, 48, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def student():
    return load_backbone("random", seed=0)


@pytest.fixture(scope="module")
def teacher():
    return load_backbone("random", seed=1)


@pytest.fixture(scope="module")
def ino_checkpoint(tmp_path_factory, student, teacher):
    """The layout of INO's checkpoint.pth (docs/method.md §6.4): DDP student, bare teacher, one head, training state."""
    head = {
        "headlist.headlist.0.mlp.0.weight": torch.randn(8, 384),
        "headlist.headlist.0.last_layer.weight_g": torch.ones(4096, 1),
    }
    checkpoint = {
        "student": {**prefixed(student.state_dict(), "module.backbone."), **prefixed(head, "module.")},
        "teacher": {**prefixed(teacher.state_dict(), "backbone."), **head},
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
        "epoch": 25,
        "args": argparse.Namespace(arch="vit_small", patch_size=8, img_size=64, checkpoint_key="student"),
        "dino_loss_cls_list": {"0.center": torch.zeros(1, 4096)},
        "dino_loss_hw_list": {"0.center": torch.zeros(1, 4096)},
        "fp16_scaler": {"scale": 65536.0, "growth_factor": 2.0},
    }
    path = tmp_path_factory.mktemp("ino") / "checkpoint.pth"
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize("which", ["student", "teacher"])
def test_ino_checkpoint_loads_strictly(ino_checkpoint, which, request, images):
    model = load_backbone(ino_checkpoint, which=which)
    assert (model.arch, model.patch_size, model.img_size) == ("vit_small", 8, 64)
    assert model.initialised_keys == () and model.source == f"{ino_checkpoint}[{which}]"
    assert not model.training
    assert_same_outputs(model, request.getfixturevalue(which), images)


def test_dino_state_dict_with_a_28x28_grid_loads_strictly(tmp_path, images):
    dino = load_backbone("random", seed=2, img_size=224)
    path = tmp_path / "dino_deitsmall8_pretrain.pth"
    torch.save(prefixed(dino.state_dict(), "", drop_mask_token=True), path)
    model = load_backbone(path)
    assert model.pos_embed.shape == (1, 785, 384) and model.img_size == 224
    assert model.initialised_keys == ("mask_token",)
    assert_same_outputs(model, dino, images)


def test_dino_training_checkpoint_drops_its_head(tmp_path, images):
    dino = load_backbone("random", seed=3, arch="vit_tiny", patch_size=16)
    state = prefixed(dino.state_dict(), "module.backbone.", drop_mask_token=True)
    state["module.head.last_layer.weight_g"] = torch.ones(65536, 1)
    torch.save({"student": state, "teacher": state, "epoch": 100}, tmp_path / "checkpoint.pth")
    assert_same_outputs(load_backbone(tmp_path / "checkpoint.pth"), dino, images)


@pytest.mark.parametrize("nested", [False, True])
def test_timm_state_dict_loads_and_matches_timm(tmp_path, nested):
    torch.manual_seed(4)
    reference = timm.create_model("vit_small_patch8_224", pretrained=False, num_classes=0, img_size=64).eval()
    state = reference.state_dict()
    torch.save({"state_dict": state, "epoch": 3} if nested else state, tmp_path / "timm.pth")
    model = load_backbone(tmp_path / "timm.pth")
    assert model.initialised_keys == ("mask_token",)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        cls, patches = model.forward_tokens(images)
        tokens = reference.forward_features(images)
    assert torch.equal(cls, tokens[:, 0]) and torch.equal(patches, tokens[:, 1:])


def test_safetensors_export_round_trips(tmp_path, student, images):
    path = tmp_path / "backbone.safetensors"
    save_backbone(student, path, source="unit test")
    expected = {"format": "ino-backbone", "arch": "vit_small", "patch_size": "8", "img_size": "64"}
    assert safetensors_metadata(path) == {**expected, "source": "unit test"}
    sidecar = json.loads((tmp_path / "backbone.safetensors.json").read_text())
    assert sidecar == {**expected, "patch_size": 8, "img_size": 64, "source": "unit test"}
    model = load_backbone(path)
    assert model.initialised_keys == ()
    assert torch.equal(model.mask_token, student.mask_token)
    assert_same_outputs(model, student, images)


@pytest.fixture()
def tiny_file(tmp_path):
    model = load_backbone("random", arch="vit_tiny", patch_size=16)
    path = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


def test_architecture_is_inferred_and_a_wrong_request_fails_with_the_report(tiny_file):
    path, _ = tiny_file
    model = load_backbone(path)
    assert (model.arch, model.patch_size, model.img_size) == ("vit_tiny", 16, 64)
    with pytest.raises(InoError, match=r"tiny\.pth: weights do not fit a vit_small/8 .*mismatches") as error:
        load_backbone(path, arch="vit_small", patch_size=8)
    assert "patch_embed.proj.weight (192, 3, 16, 16) vs (384, 3, 8, 8)" in str(error.value)
    assert "more" in str(error.value)  # the list is cut after 10 entries, with a count of the rest


def test_missing_and_unexpected_keys_are_listed(tiny_file, tmp_path):
    _, state = tiny_file
    del state["blocks.3.attn.qkv.weight"]
    state["blocks.12.norm1.weight"] = torch.ones(192)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(InoError) as error:
        load_backbone(tmp_path / "broken.pth")
    message = str(error.value)
    assert "broken.pth" in message
    assert "1 missing keys (blocks.3.attn.qkv.weight)" in message
    assert "1 unexpected keys (blocks.12.norm1.weight)" in message


def test_bad_inputs_name_the_file(tmp_path, tiny_file):
    path, state = tiny_file
    (tmp_path / "notes.txt").write_text("not weights\n")
    torch.save({"student": state}, tmp_path / "student_only.pth")
    torch.save({"linear.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    torch.save(
        {"patch_embed.proj.weight": torch.zeros(192, 3, 14, 14), "pos_embed": torch.zeros(1, 17, 192)},
        tmp_path / "dinov2.pth",
    )
    cases = [
        (tmp_path / "notes.txt", {}, r"notes\.txt: not a PyTorch checkpoint"),
        (tmp_path / "absent.pth", {}, r"absent\.pth: file not found"),
        (tmp_path / "student_only.pth", {"which": "teacher"}, "has no 'teacher' entry"),
        (tmp_path / "other.pth", {}, r"other\.pth: not a ViT backbone"),
        (tmp_path / "dinov2.pth", {}, r"dinov2\.pth: unsupported patch size 14"),
        (path, {"img_size": 224}, "stored for img_size 64"),
        (path, {"which": "ema"}, "--which must be one of"),
    ]
    for source, kwargs, match in cases:
        with pytest.raises(InoError, match=match):
            load_backbone(source, **kwargs)


def test_random_init_is_seeded_and_leaves_the_global_rng_alone():
    before = torch.random.get_rng_state()
    first, again, other = (load_backbone("random", arch="vit_tiny", patch_size=16, seed=s) for s in (5, 5, 6))
    assert torch.equal(torch.random.get_rng_state(), before)
    pairs = zip(first.state_dict().values(), again.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    assert not torch.equal(first.pos_embed, other.pos_embed)
    assert first.source == "random(seed=5)"


def test_convert_round_trips(ino_checkpoint, teacher, images, tmp_path, capsys):
    out = tmp_path / "export" / "ino_teacher.safetensors"
    assert main(["convert", str(ino_checkpoint), str(out), "--which", "teacher"]) == 0
    assert "vit_small/8" in capsys.readouterr().out
    assert safetensors_metadata(out)["source"] == f"{ino_checkpoint}[teacher]"
    assert json.loads(out.with_name(out.name + ".json").read_text())["img_size"] == 64
    assert_same_outputs(load_backbone(out), teacher, images)


def test_convert_reports_bad_input_in_one_line(tmp_path, capsys):
    (tmp_path / "bad.pth").write_bytes(b"\x00garbage")
    assert main(["convert", str(tmp_path / "bad.pth"), str(tmp_path / "out.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ino convert: error: ") and "bad.pth" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out.safetensors").exists()


def test_an_export_gets_ordinary_file_permissions(tmp_path):
    import os

    path = tmp_path / "b.safetensors"
    save_backbone(load_backbone("random", arch="vit_tiny", patch_size=16), path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # written atomically
