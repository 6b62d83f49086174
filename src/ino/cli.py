"""The ``ino`` command: one subcommand per job, each a thin layer over the library API.

Subcommands live in :mod:`ino.commands` (one module each, heavy imports inside ``run``), so ``ino --help`` and
``ino <command> --help`` never import torch. Arguments are checked while they are parsed (types, ranges, choices);
bad input anywhere below raises :class:`~ino.errors.InoError`, which becomes one line on stderr and exit status 2,
never a traceback. The library logs (progress lines, warnings); here the log goes to stderr, clear of the progress
bars, at INFO (``--quiet``: warnings only, and no progress bars).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from ino import __version__
from ino.errors import InoError, Interrupted

SUBCOMMANDS = ("convert", "demo", "evaluate", "export", "prepare", "propagate", "synth", "train")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (``ino <command>: error: <what> (see ino <command> --help)``) and no
    abbreviated options (a prefix of a flag is an error, not a guess)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _command(name: str) -> ModuleType:
    return importlib.import_module(f"ino.commands.{name}")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="ino", description=f"INO video segmentation toolkit {__version__}")
    parser.add_argument("--version", action="version", version=f"ino {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=ArgumentParser)
    for name in SUBCOMMANDS:
        module = _command(name)
        command = subcommands.add_parser(name, help=module.SUMMARY, description=module.DESCRIPTION)
        module.add_arguments(command)
        command.add_argument("--quiet", action="store_true", help="no progress bars; warnings and errors only")
    return parser


class _ProgressBarHandler(logging.Handler):
    """Log lines through ``tqdm.write``, so that they never break a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


def _configure_logging(quiet: bool) -> None:
    """The library's log (logger ``ino``) and its Python warnings as plain lines on stderr."""
    handler = _ProgressBarHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("ino")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False

    def show_warning(message: Warning | str, *_: object, **__: object) -> None:
        logger.warning("warning: %s", message)

    warnings.showwarning = show_warning


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0, 2 for bad input, 130 when interrupted)."""
    try:
        args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as done:  # --help, --version, or a one-line argument error
        return done.code if isinstance(done.code, int) else 0
    _configure_logging(args.quiet)
    try:
        _command(args.command).run(args)
    except InoError as error:
        print(f"ino {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(f"ino {args.command}: {stop}", file=sys.stderr)
        return stop.exit_code
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"ino {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0
