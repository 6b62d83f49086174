"""Any timm ViT as a propagation backbone: each family's release layout (random weights, nothing downloaded) loads
through ``ino`` and gives timm's own features for that network, on an odd frame size rounded to the patch multiple.

The reference is the timm model the file was written from, run through ``forward_features`` (last block), or a copy
cut after the tapped block: neither goes through ``forward_intermediates``, which ``ino`` uses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ino.cli import main
from ino.data.davis import DavisLayout, read_mask
from ino.data.synthetic import SynthConfig, write_benchmark
from ino.errors import InoError
from ino.models.timm_backbone import TimmBackbone, _rebuilds_its_buffers, build_timm_backbone
from ino.models.weights import load_backbone
from support.upstream_layouts import FAMILIES, features_and_reference, write_release

#: the last block (timm's forward_features of the whole model) too, besides block 6 (INO's tap) for every family
LAST_BLOCK_TOO = {"dinov2-reg4", "dinov3"}


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> tuple[TimmBackbone, Path]:
    return write_release(request.param, tmp_path_factory.mktemp(request.param))


@pytest.mark.parametrize("release", list(FAMILIES), indirect=True)
def test_a_release_file_gives_timms_features_on_an_odd_frame(release: tuple[TimmBackbone, Path], request) -> None:
    source, path = release
    family = request.node.callspec.params["release"]
    backbone = load_backbone(path, arch=source.arch, seed=0)
    assert isinstance(backbone, TimmBackbone) and backbone.source in (str(path), f"{path}[model]")
    assert backbone.patch_size == source.patch_size
    for block in (6, 11) if family in LAST_BLOCK_TOO else (6,):
        size, ours, reference = features_and_reference(backbone, source, block)
        p = source.patch_size
        assert size == (72 // p * p, 96 // p * p)  # 75x101 floored to x8, then to the patch multiple
        torch.testing.assert_close(ours, reference, rtol=0, atol=2e-5)
    depth = 12
    with pytest.raises(InoError, match=f"feature block {depth} does not exist: the backbone has blocks 0..{depth - 1}"):
        backbone.patch_features(torch.zeros(1, 3, 2 * source.patch_size, 2 * source.patch_size), block=depth)


def test_names_are_checked_against_timms_registry_in_one_line() -> None:
    with pytest.raises(InoError, match=r"neither ours .* nor a timm model; close names: vit_small_patch14_dinov2"):
        load_backbone("random", arch="vit_small_patch14_dinov")
    with pytest.raises(InoError, match="nor a timm model"):
        load_backbone("random", arch="vit_small_patch8_224.nosuchtag")
    with pytest.raises(InoError, match="is timm's resnet model: only timm's ViTs"):
        load_backbone("random", arch="resnet18")


@pytest.mark.parametrize("release", ["dinov2"], indirect=True)
def test_every_other_key_is_mapped_strictly_with_one_report(release, tmp_path: Path) -> None:
    source, path = release
    state = torch.load(path)
    del state["blocks.3.ls1.gamma"]
    state["blocks.0.attn.extra"] = torch.zeros(3)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(InoError) as error:
        load_backbone(tmp_path / "broken.pth", arch=source.arch)
    message = str(error.value)
    assert "broken.pth: weights do not fit a timm vit_small_patch14_dinov2 backbone" in message
    assert "1 missing keys (blocks.3.ls1.gamma); 1 unexpected keys (blocks.0.attn.extra)" in message
    assert "\n" not in message
    with pytest.raises(InoError, match="vit_small_patch14_dinov2 has patch size 14, not the requested 8"):
        load_backbone(path, arch=source.arch, patch_size=8)


@pytest.mark.parametrize("release", ["dinov2-reg4"], indirect=True)
def test_a_register_file_does_not_load_into_a_model_without_registers(release) -> None:
    _, path = release
    with pytest.raises(InoError, match="holds 4 register tokens but vit_small_patch14_dinov2 has 0: choose the model"):
        load_backbone(path, arch="vit_small_patch14_dinov2")


@pytest.mark.parametrize("release", ["dinov3-qkvb"], indirect=True)
def test_dinov3_biases_are_never_dropped_silently(release) -> None:
    _, path = release
    with pytest.raises(
        InoError, match="non-zero biases but vit_small_patch16_dinov3 has no qkv bias: use vit_small_pa"
    ):
        load_backbone(path, arch="vit_small_patch16_dinov3")


@pytest.mark.parametrize("release", ["dino"], indirect=True)
def test_a_patch_size_other_than_the_names_is_refused(release) -> None:
    _, path = release
    with pytest.raises(InoError, match="patch embedding is 8x8 but vit_small_patch16_224 has patch size 16"):
        load_backbone(path, arch="vit_small_patch16_224")


@pytest.mark.parametrize("release", ["dinov2-reg4"], indirect=True)
def test_propagate_runs_a_dinov2_release_end_to_end(release, tmp_path: Path, capsys) -> None:
    _, path = release
    root = tmp_path / "synth"
    write_benchmark(root, sequences=1, config=SynthConfig(height=96, width=160, frames=3), seed=4)
    out = tmp_path / "out"
    args = ["--davis-root", str(root), "--out", str(out), "--checkpoint", str(path)]
    code = main(["propagate", *args, "--arch", "vit_small_patch14_reg4_dinov2", "--scale-size", "96", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "(vit_small_patch14_reg4_dinov2/14)" in captured.out
    name = DavisLayout(root).sequences()[0]
    assert [read_mask(png).shape for png in sorted((out / name).glob("*.png"))] == [(96, 160)] * 3
    settings = json.loads((out / ".ino-propagate.json").read_text())["settings"]
    assert (settings["arch"], settings["patch_size"], settings["backbone"]) == (
        "vit_small_patch14_reg4_dinov2",
        14,
        str(path),
    )
    code = main(["propagate", *args, "--arch", "vit_small_patch14_reg4", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "close names: vit_small_patch14_reg4_dinov2" in err


def test_a_model_built_for_loading_computes_the_buffers_no_file_holds() -> None:
    """RoPE periods and the fixed-zero key bias of a DINOv3 with biases, as a model built with timm's draws has."""
    built = dict(build_timm_backbone("vit_small_patch16_dinov3_qkvb").model.named_buffers())
    empty = dict(build_timm_backbone("vit_small_patch16_dinov3_qkvb", for_loading=True).model.named_buffers())
    assert built.keys() == empty.keys() and "rope.periods" in built and "blocks.0.attn.k_bias" in built
    assert all(torch.equal(built[name], empty[name]) for name in built)


def test_a_computed_buffer_timm_cannot_refill_is_noticed() -> None:
    module = torch.nn.Linear(2, 2)
    assert _rebuilds_its_buffers(module)
    module.register_buffer("table", torch.ones(2), persistent=False)
    assert not _rebuilds_its_buffers(module)
    module.register_buffer("stored", torch.ones(2))
    del module._buffers["table"]
    assert _rebuilds_its_buffers(module)
