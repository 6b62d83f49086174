"""The ``ino`` command: one subcommand per job, each a thin layer over the library API.

Subcommands live in :mod:`ino.commands` (one module each, heavy imports inside ``run``), so ``ino --help`` and
``ino <command> --help`` never import torch. Arguments are checked while they are parsed (types, ranges, choices);
bad input anywhere below raises :class:`~ino.errors.InoError`, which becomes one line on stderr and exit status 2,
never a traceback. The library logs (progress lines, warnings); here the log goes to stderr, clear of the progress
bars, at INFO (``--quiet``: warnings only, and no progress bars).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from ino import __version__
from ino.errors import InoError, Interrupted

SUBCOMMANDS = ("convert", "demo", "evaluate", "export", "prepare", "propagate", "suite", "synth", "train")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (``ino <command>: error: <what> (see ino <command> --help)``) and no
    abbreviated options (a prefix of a flag is an error, not a guess)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args: Sequence[str] | None = None, namespace: object = None) -> argparse.Namespace:  # type: ignore[override]
        """As argparse, but an unknown flag is reported by the subcommand that was given it, with the closest
        current flag (``--max-steps`` -> ``did you mean --run.max-steps?``)."""
        parsed, extras = self.parse_known_args(args, namespace)  # type: ignore[arg-type]
        if extras:
            command = _subparsers(self).get(getattr(parsed, "command", None), self)
            command.error(_unrecognized(extras, [o for a in command._actions for o in a.option_strings]))
        return parsed


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})


def _unrecognized(extras: list[str], options: list[str]) -> str:
    """argparse's "unrecognized arguments" line, with a suggestion for each unknown flag that resembles one."""
    message = f"unrecognized arguments: {' '.join(extras)}"
    flags = [text.split("=", 1)[0] for text in extras if text.startswith("--")]
    hints = [f"{flag} -> {match}" for flag in flags if (match := _closest(flag, options))]
    if len(hints) == 1 == len(flags):
        return f"{message}; did you mean {hints[0].split(' -> ')[1]}?"
    return f"{message}; did you mean: {', '.join(hints)}?" if hints else message


def _closest(flag: str, options: list[str]) -> str | None:
    """The option ``flag`` most likely meant: the same name with dashes for underscores, the same last dotted part
    (a setting that moved into a group), or a near spelling."""

    def canonical(option: str) -> str:
        return option.lower().replace("_", "-").lstrip("-")

    by_name = {canonical(option): option for option in options if option.startswith("--")}
    wanted = canonical(flag)
    if wanted in by_name:
        return by_name[wanted]
    same_setting = [option for name, option in by_name.items() if name.split(".")[-1] == wanted.split(".")[-1]]
    if len(same_setting) == 1:
        return same_setting[0]
    near = difflib.get_close_matches(wanted, list(by_name), n=1, cutoff=0.8)
    return by_name[near[0]] if near else None


def _command(name: str) -> ModuleType:
    return importlib.import_module(f"ino.commands.{name}")


def build_parser(only: str | None = None) -> ArgumentParser:
    """The whole command line, or with ``only`` that subcommand's arguments and the others' names alone.

    A run needs only its own command's options; building every command would import every command module, which
    is ~10 % of a ``--quiet`` ``ino evaluate`` of the dev set (benchmarks/bench_evaluate.py).
    """
    parser = ArgumentParser(prog="ino", description=f"INO video segmentation toolkit {__version__}")
    parser.add_argument("--version", action="version", version=f"ino {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=ArgumentParser)
    for name in SUBCOMMANDS:
        if only is not None and name != only:
            subcommands.add_parser(name)
            continue
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


#: how long a rank other than 0 waits, after a user error, for torchrun to stop it because rank 0 failed too
RANK_0_GRACE_S = 15.0


def _user_error(command: str, error: InoError) -> int:
    """One line on stderr and exit status 2; under torchrun, one line for the whole job.

    Every rank usually meets the same bad input. Rank 0 prints it; the others wait up to :data:`RANK_0_GRACE_S`
    for torchrun, which stops the remaining ranks (SIGTERM) once one has failed, and then exit with 2 without
    printing. A rank that is not stopped met an error of its own: it prints it, naming itself. Each rank also
    leaves the line in torchrun's error file, so torchrun's failure summary shows it instead of a bare exit code
    (docs/propagation.md, "What a user error looks like under torchrun").
    """
    line = f"ino {command}: error: {error}"
    rank = int(os.environ.get("RANK", "0"))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _leave_torchrun_error_file(line)
        if rank != 0:
            signal.signal(signal.SIGTERM, lambda *_: os._exit(2))
            time.sleep(RANK_0_GRACE_S)
            line = f"ino {command} (rank {rank}): error: {error}"
    print(line, file=sys.stderr)
    return 2


def _leave_torchrun_error_file(line: str) -> None:
    """Write ``line`` where torchrun's failure summary reads a child's error (``TORCHELASTIC_ERROR_FILE``)."""
    import json

    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    record = {"message": {"message": line, "extraInfo": {"py_callstack": line, "timestamp": str(int(time.time()))}}}
    try:
        with open(path, "w") as stream:
            json.dump(record, stream)
    except OSError:
        pass  # the summary then shows the exit code only; the line itself is still printed


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0, 2 for bad input, 130 when interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    try:
        args = build_parser(command if command in SUBCOMMANDS else None).parse_args(argv)
    except SystemExit as done:  # --help, --version, or a one-line argument error
        return done.code if isinstance(done.code, int) else 0
    _configure_logging(args.quiet)
    try:
        _command(args.command).run(args)
    except InoError as error:
        return _user_error(args.command, error)
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
