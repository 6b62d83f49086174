"""``ino convert`` and ``ino export`` replace a file, or its ``.json`` sidecar, only when ``ino`` wrote it or the user
says ``--overwrite``; refused before any work, in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ino.cli import main
from ino.models.weights import load_backbone
from ino.utils.outputs import RECORD_NAME


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DINO-style training checkpoint of a tiny ViT/16 (student and teacher), small and quick to write."""
    import torch

    state = {
        f"module.backbone.{k}": v
        for k, v in load_backbone("random", arch="vit_tiny", patch_size=16).state_dict().items()
    }
    path = tmp_path_factory.mktemp("checkpoint") / "checkpoint.pth"
    torch.save({"student": state, "teacher": state}, path)
    return path


@pytest.mark.parametrize("command", ["convert", "export"])
def test_a_file_ino_did_not_write_is_replaced_only_with_overwrite(
    command: str, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def write(out: Path, *extra: str) -> tuple[int, str]:
        if command == "convert":
            args = ["convert", str(checkpoint), str(out)]
        else:
            args = ["export", "--checkpoint", str(checkpoint), "--out", str(out)]
        code = main([*args, *extra, "--quiet"])
        return code, capsys.readouterr().err

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    code, err = write(notes)
    assert code == 2 and err.count("\n") == 1, err
    assert f"{notes} exists and was not written by ino" in err and "--overwrite" in err
    assert notes.read_text() == "my notes" and not Path(f"{notes}.json").exists()
    # the sidecar is guarded as well: nothing is written while either file is the user's
    weights, sidecar = tmp_path / "mine.safetensors", tmp_path / "mine.safetensors.json"
    sidecar.write_text('{"my": "notes"}')
    code, err = write(weights)
    assert code == 2 and f"{sidecar} exists and was not written by ino" in err and err.count("\n") == 1
    assert sidecar.read_text() == '{"my": "notes"}' and not weights.exists()
    assert write(weights, "--overwrite")[0] == 0
    assert load_backbone(weights).arch == "vit_tiny" and json.loads(sidecar.read_text())["format"] == "ino-backbone"
    # ino's own file is replaced without --overwrite (its folder's record names it) ...
    assert set(json.loads((tmp_path / RECORD_NAME).read_text())) == {weights.name, sidecar.name}
    assert write(weights)[0] == 0
    # ... until the user puts a file of their own under that name
    weights.write_bytes(b"the user's own file, put there since")
    code, err = write(weights)
    assert code == 2 and "was not written by ino" in err
    assert weights.read_bytes() == b"the user's own file, put there since"
