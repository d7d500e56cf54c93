"""The ``ffeat`` command line: one module per subcommand, imported only when it runs."""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from .._version import __version__

#: Every subcommand (also the name of its module here) and its summary for ``ffeat --help``.
#: A subcommand's module, and what it imports, is loaded only when that command runs.
_COMMANDS = {
    "demo": "train and evaluate the feature classifiers on the embedded demo data",
    "train": "train a detector on labelled images and save it",
    "predict": "probability of fake for image files and folders",
    "evaluate": "metrics of a model on a labelled dataset",
    "model": "the model card of the shipped detector, or what a model file says",
    "extract": "compute features of images into a .npz file or a folder of shards",
    "compare": "train the feature detectors and the CNN on one split and compare accuracy, "
               "speed and size",
}


def _chosen(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names: its first word that is not an option (the
    top-level options take no value), when that is a subcommand."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in _COMMANDS else None


def _parser(command: str | None) -> argparse.ArgumentParser:
    """The parser, with the full options of ``command`` only (the others are listed)."""
    parser = argparse.ArgumentParser(
        prog="ffeat", description="Forensic features that tell AI-generated faces "
                                  "from real photographs.")
    parser.add_argument("--version", action="version", version=f"ffeat {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary in _COMMANDS.items():
        if name == command:
            importlib.import_module(f".{name}", __name__).add_parser(sub, summary)
        else:
            sub.add_parser(name, help=summary)
    return parser


def _silence_stdout() -> None:
    """Point standard output at the null device, so that flushing it at exit does not
    raise again once its reader has gone (nothing to do when it is not a file)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # captured, or already closed
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        return _run(sys.argv[1:] if argv is None else list(argv))
    except BrokenPipeError:  # the reader went away (ffeat model | head): stop quietly,
        _silence_stdout()     # with the status of a Unix tool ended by SIGPIPE
        return 128 + signal.SIGPIPE


def _run(argv: list[str]) -> int:
    """Parse ``argv`` and run the command it names."""
    args = _parser(_chosen(argv)).parse_args(argv)
    from .._gpu import resolve_backend
    from ._common import fail

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
