"""Argument types shared by the subcommands: numbers are checked while the command line is parsed."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _number(kind: type, text: str, ok: Callable[[float], bool], rule: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None
    if not ok(value):  # nan fails every comparison, so it lands here too
        raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
    return value


def int_at_least(low: int) -> Callable[[str], int]:
    """An integer type that accepts ``low`` and above."""

    def parse(text: str) -> int:
        return int(_number(int, text, lambda v: v >= low, f">= {low}"))

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def positive_float(text: str) -> float:
    return _number(float, text, lambda v: 0 < v < float("inf"), "a finite number > 0")


def non_negative_float(text: str) -> float:
    return _number(float, text, lambda v: 0 <= v < float("inf"), "a finite number >= 0")


def unit_interval_open(text: str) -> float:
    """A fraction in [0, 1)."""
    return _number(float, text, lambda v: 0 <= v < 1, "in [0, 1)")


def comma_list(text: str) -> list[str]:
    """``a,b,c`` as a list of non-empty names."""
    return [item for item in text.split(",") if item]


def boolean(text: str) -> bool:
    """``true``/``false`` (or ``yes``/``no``, ``1``/``0``), for a setting that a preset may have either way."""
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    if text.lower() not in words:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return words[text.lower()]


def any_int(text: str) -> int:
    """An integer of either sign (a block index counted from the end when negative)."""
    return int(_number(int, text, lambda v: True, "an integer"))
