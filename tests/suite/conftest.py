"""Shared inputs of the suite tests: a tiny synthetic DAVIS benchmark, its YouTube-VOS twin, and the command line
of two random-init ViT-Tiny/16 models side by side at a 64-pixel short side (a run takes seconds)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ino.cli import main
from ino.data.synthetic import SynthConfig, write_benchmark
from support.layouts import ytvos_from_davis

TINY = ["--arch", "vit_tiny", "--patch-size", "16", "--scale-size", "64", "--device", "cpu"]


@pytest.fixture(scope="session")
def two_models() -> list[str]:
    """Two random-init ViT-Tiny/16 (seeds 0 and 1) named alpha and beta, at a 64-pixel short side."""
    return ["--checkpoint", "random", "--checkpoint", "random", "--name", "alpha", "--name", "beta",
            "--seed", "0", "--seed", "1", *TINY]  # fmt: skip


@pytest.fixture(scope="session")
def one_model() -> list[str]:
    """One random-init ViT-Tiny/16 at a 64-pixel short side (named ``random-vit_tiny``)."""
    return ["--checkpoint", "random", *TINY]


@pytest.fixture(scope="session")
def davis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two synthetic DAVIS sequences of 6 frames, 96 x 160."""
    root = tmp_path_factory.mktemp("davis")
    write_benchmark(root, sequences=2, config=SynthConfig(height=96, width=160, frames=6), seed=3)
    return root


@pytest.fixture(scope="session")
def ytvos(davis: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A YouTube-VOS split (valid/, all frames/) made of the first DAVIS sequence."""
    valid, all_frames, _ = ytvos_from_davis(davis, tmp_path_factory.mktemp("ytvos"), sequences=1)
    return valid, all_frames


@pytest.fixture
def suite(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``suite(*ARGS)`` runs ``ino suite ARGS`` in this process and returns (exit status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["suite", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
