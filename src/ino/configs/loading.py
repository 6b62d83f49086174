"""The one way YAML becomes a :class:`~ino.configs.schema.TrainConfig`: presets by name or path, stacked in order.

Presets live in this folder and ship in the wheel: ``ino-charades``, ``ino-kinetics`` (the authors' runs),
``tiny`` (CPU-sized, for tests), ``demo`` (``ino demo``'s recipe, built on ``tiny``) and ``ablations/*``, which
change a few settings and are meant to be stacked on a preset. Later sources override earlier ones key by key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ino.configs.schema import TrainConfig
from ino.errors import InoError

PRESET_DIR = Path(__file__).resolve().parent
#: a YAML file may name the presets (or files) it builds on, applied before its own settings
BASE_KEY = "base"


def preset_names() -> list[str]:
    """Every shipped preset, as accepted by ``--config`` (``ino-charades``, ``ablations/loss-out-mim``, ...)."""
    return sorted(p.relative_to(PRESET_DIR).with_suffix("").as_posix() for p in PRESET_DIR.rglob("*.yaml"))


def _locate(source: str | Path) -> Path:
    """A YAML path: ``source`` itself when it is a file, else the shipped preset of that name."""
    path = Path(source)
    if path.is_file():
        return path
    preset = PRESET_DIR / f"{source}.yaml"
    if preset.is_file():
        return preset
    raise InoError(f"--config {source}: no such file or preset (presets: {', '.join(preset_names())})")


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, recursively for mappings (a group's settings merge key by key)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config(source: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The settings of one preset or YAML file as nested plain data, its ``base`` presets merged underneath."""
    path = _locate(source)
    if path.resolve() in _seen:
        raise InoError(f"{path}: '{BASE_KEY}' forms a cycle")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.MarkedYAMLError as error:
        raise InoError(_yaml_problem(path, error)) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise InoError(f"{path}: cannot read the configuration ({error})") from None
    if not isinstance(data, dict):
        raise InoError(f"{path}: a configuration must be a mapping of settings")
    bases = data.pop(BASE_KEY, [])
    merged: dict[str, Any] = {}
    for base in [bases] if isinstance(bases, str) else bases:
        merged = merge(merged, read_config(base, (*_seen, path.resolve())))
    return merge(merged, data)


def _yaml_problem(path: Path, error: yaml.MarkedYAMLError) -> str:
    """One line, ``file:line:column: problem``, from PyYAML's several-line report (which quotes the source)."""
    mark = error.problem_mark or error.context_mark
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    problem = ": ".join(part for part in (error.context, error.problem) if part) or "invalid YAML"
    return f"{where}: not valid YAML ({problem})"


def load_config(sources: Iterable[str | Path] = (), overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """The defaults, then every source in order, then ``overrides`` (nested data), validated."""
    sources = list(sources)
    data: dict[str, Any] = {}
    for source in sources:
        data = merge(data, read_config(source))
    data = merge(data, overrides or {})
    where = ", ".join([*(str(s) for s in sources), *(["overrides"] if overrides else [])]) or "configuration"
    return TrainConfig.from_dict(data, where)
