"""Lazy package exports: a package names its public objects, and a module is imported on first use only.

Every ``ino`` package ``__init__`` uses this, so that ``import ino`` and the CLI's start-up never import torch:
``ino evaluate`` and ``ino --help`` stay well under a second. (scientific-python's ``lazy_loader`` does the same;
these few lines avoid a dependency that the GPU image, which runs the code from source, does not have.)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def attach(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``, given ``{public name: submodule}``.

    The submodule is relative to the package (``"api"``) or absolute (``"ino.propagation.api"``). A looked-up
    object is cached in the package's namespace, so each costs one import.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        qualified = module if module.startswith("ino.") else f"{package}.{module}"
        value = getattr(importlib.import_module(qualified), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*exports, *vars(sys.modules[package])})

    return __getattr__, __dir__, sorted(exports)
