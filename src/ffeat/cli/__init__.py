"""The ``ffeat`` command line: one module per subcommand."""
from __future__ import annotations

import argparse
import sys

from .._gpu import resolve_backend
from .._version import __version__
from . import compare, demo, evaluate, extract, predict, train
from ._common import fail

_COMMANDS = (demo, train, predict, evaluate, extract, compare)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ffeat", description="Forensic features that tell AI-generated faces "
                                  "from real photographs.")
    parser.add_argument("--version", action="version", version=f"ffeat {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if hasattr(args, "backend"):
        try:
            args.backend = resolve_backend(args.backend)
        except RuntimeError as exc:  # cuda asked for, none usable
            return fail(str(exc))
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
