"""The ``ino`` command: one subcommand per job, each a thin layer over the library API.

Subcommands live in :mod:`ino.commands` (one module each). Bad input raises :class:`~ino.errors.InoError`
anywhere below; here it becomes one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from jsonargparse import ArgumentParser

from ino import __version__
from ino.errors import InoError

SUBCOMMANDS = ("convert", "demo", "evaluate", "export", "prepare", "propagate", "synth", "train")


def _command(name: str) -> ModuleType:
    return importlib.import_module(f"ino.commands.{name}")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="ino", description=f"INO video segmentation toolkit {__version__}")
    parser.add_argument("--version", action="version", version=f"ino {__version__}")
    subcommands = parser.add_subcommands(dest="command", required=True)
    for name in SUBCOMMANDS:
        module = _command(name)
        subcommands.add_subcommand(name, module.build_parser(), help=module.SUMMARY)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    command = args.command
    try:
        _command(command).run(args[command])
    except InoError as error:
        print(f"ino {command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"ino {command}: interrupted", file=sys.stderr)
        return 130
    return 0
