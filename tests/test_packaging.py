"""The package's declared dependencies and licence: ranges for users, exact releases only for ``make`` and CI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parents[1]


def requirements() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {Requirement(line).name: Requirement(line) for line in project["dependencies"]}


def constraints() -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line of constraints.txt."""
    lines = (REPO / "constraints.txt").read_text().splitlines()
    pins = [line.split("#")[0].strip() for line in lines]
    return dict(pin.split("==") for pin in pins if pin)


def test_no_dependency_is_pinned_exactly_so_a_users_torch_is_kept() -> None:
    for name, requirement in requirements().items():
        assert not any(spec.operator in ("==", "===") for spec in requirement.specifier), name
    assert str(requirements()["torch"].specifier).startswith(">=")
    assert str(requirements()["torchvision"].specifier).startswith(">=")


def test_constraints_pin_the_tested_releases_inside_the_ranges() -> None:
    pins, ranges = constraints(), requirements()
    assert set(pins) >= {"torch", "torchvision"}
    for name, version in pins.items():
        assert ranges[name].specifier.contains(version), f"{name}=={version} is outside {ranges[name]}"
        # the lower bound is the oldest release tested, i.e. this pin's minor release, not an untested older one
        lower = next(spec.version for spec in ranges[name].specifier if spec.operator == ">=")
        assert version.startswith(lower + "."), f"{name}: lower bound {lower} is not the tested {version}"


def test_make_installs_through_the_constraints_file() -> None:
    """A range admits a newer torch, which pip would fetch as a multi-GB CUDA build: ``make`` must pin it."""
    makefile = (REPO / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if re.search(r"pip install\b", line)]
    assert installs and all("-c constraints.txt" in line for line in installs)
    stamp_rule = next(line for line in makefile.splitlines() if line.startswith("$(STAMP):"))
    assert "constraints.txt" in stamp_rule  # editing the pins reinstalls


def test_scipy_is_declared_for_the_mat_annotations() -> None:
    assert "scipy" in requirements()


def test_the_licence_named_in_pyproject_is_there() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "ino contributors" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text
