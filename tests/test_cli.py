"""The command line as a whole: start-up imports, one-line argument errors, the conventions every command shares."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ino.cli import SUBCOMMANDS, build_parser, main
from ino.data.davis import DavisLayout
from ino.data.synthetic import SynthConfig, write_benchmark
from ino.propagation.baselines import write_first_frame_baseline


def run_python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints a JSON object, returned here."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


HEAVY = ("torch", "torchvision", "timm", "matplotlib", "av")


@pytest.mark.parametrize("argv", [["--help"], ["--version"], *([name, "--help"] for name in SUBCOMMANDS)])
def test_help_and_version_import_no_heavy_library(argv: list[str]) -> None:
    code = f"""
import contextlib, io, json, sys
from ino.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    status = main({argv!r})
print(json.dumps({{"status": status, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""
    result = run_python(code)
    assert result == {"status": 0, "heavy": []}


def test_evaluate_runs_without_importing_torch_nor_the_other_commands(tmp_path: Path) -> None:
    names = write_benchmark(tmp_path / "bench", 2, SynthConfig(height=48, width=64, frames=5), seed=1)
    write_first_frame_baseline(DavisLayout(tmp_path / "bench"), names, tmp_path / "results")
    argv = ["evaluate", "--davis-root", str(tmp_path / "bench"), "--results", str(tmp_path / "results"), "--quiet"]
    code = f"""
import contextlib, io, json, sys
from ino.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    status = main({argv!r})
print(json.dumps({{"status": status, "torch": [m for m in sys.modules if m.split(".")[0] == "torch"],
                  "commands": sorted(m for m in sys.modules if m.startswith("ino.commands.")),
                  "printed": out.getvalue()}}))
"""
    result = run_python(code)
    assert result["status"] == 0 and result["torch"] == []
    assert result["commands"] == ["ino.commands._args", "ino.commands.evaluate"]  # only its own command is built
    assert "J&F-Mean" in result["printed"] and (tmp_path / "results" / "global_results-val.csv").is_file()


def test_every_command_takes_quiet_as_a_switch_and_flags_have_dashes_only() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for name, command in subparsers.items():
        flags = [flag for action in command._actions for flag in action.option_strings]
        assert "--quiet" in flags, name
        quiet = next(a for a in command._actions if "--quiet" in a.option_strings)
        assert quiet.nargs == 0, name  # a switch, not an option taking a value
        assert not [flag for flag in flags if "_" in flag], name


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--which", "ema"], "argument --which: invalid choice: 'ema'"),
        (["demo", "--budget-s", "-5"], "argument --budget-s: must be a finite number > 0, got -5"),
        (["demo", "--budget-s", "inf"], "argument --budget-s: must be a finite number > 0, got inf"),
        (["train", "--max-steps", "5"], "unrecognized arguments: --max-steps 5; did you mean --run.max-steps?"),
        (["train", "--run.checkpoint_every", "5"], "did you mean --run.checkpoint-every?"),
        (["propagate", "--checkpoint", "random", "--out", "x", "--radious=3"], "did you mean --radius?"),
        (["synth", "--out", "x", "--max-objects", "300"], "argument --max-objects: must be <= 254"),
        (["propagate", "--checkpoint", "random", "--out", "x", "--preset", "davis"], "invalid choice: 'davis'"),
        (["train", "--optim.precision", "fp8"], "argument --optim.precision: invalid choice: 'fp8'"),
        (["train", "--clips.workers", "x"], "clips.workers must be an integer, got 'x'"),
        (["evaluate", "--davis-root", "x", "--results", "y", "--workers", "0"], "must be >= 1, got 0"),
        (["train", "--optim.base_lr", "1"], "unrecognized arguments: --optim.base_lr 1; did you mean --optim.base-lr?"),
        (["train", "--optim.base", "1"], "unrecognized arguments: --optim.base"),
        (["train", "--clips.workers", "-1"], "clips.workers must be >= 0, got -1"),
        (["propagate", "--davis-root", "x", "--checkpoint", "random", "--out", "y", "--device", "cuda:99"], "cuda:99"),
        (["propagate", "--davis-root", "x", "--checkpoint", "random", "--out", "y", "--device", "gpu"], "not a device"),
    ],
)
def test_bad_arguments_end_in_one_line_before_any_work(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("ino")


def test_settings_are_validated_before_any_work(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "--config", "tiny", "--data", str(tmp_path), "--output-dir", str(out),
                 "--optim.base-lr", "-1"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "optim.base_lr must be >= 0, got -1.0" in err and err.count("\n") == 1
    assert not out.exists()


def test_an_unknown_flag_that_resembles_nothing_gets_no_guess_and_several_get_one_each(capsys) -> None:
    assert main(["propagate", "--checkpoint", "random", "--out", "x", "--zzz", "1"]) == 2
    err = capsys.readouterr().err
    assert err == "ino propagate: error: unrecognized arguments: --zzz 1 (see ino propagate --help)\n"
    assert main(["train", "--max-steps", "5", "--run.log_every", "2"]) == 2
    err = capsys.readouterr().err
    assert "did you mean: --max-steps -> --run.max-steps, --run.log_every -> --run.log-every?" in err


def test_a_rank_other_than_0_with_an_error_of_its_own_names_itself(monkeypatch, capsys) -> None:
    """Rank 1 waits for torchrun to stop it (rank 0 failed too); when nothing stops it, the error was its own."""
    monkeypatch.setattr("ino.cli.RANK_0_GRACE_S", 0.05)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["evaluate", "--davis-root", "/nonexistent/davis", "--results", "/nonexistent/r"]) == 2
    assert capsys.readouterr().err.startswith("ino evaluate (rank 1): error: ")
