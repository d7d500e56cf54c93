"""The ``ffeat`` command line: one module per subcommand, imported only when it runs."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys

from .._version import __version__

#: Every subcommand (also the name of its module here, ``-`` written ``_``) and its summary for ``ffeat --help``.
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
    "add-expert": "add a new generator's expert to an expert model, writing a new file",
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
            importlib.import_module(f".{name.replace('-', '_')}", __name__).add_parser(sub, summary)
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


class StdoutError(Exception):
    """Standard output cannot be written (closed, full, an I/O error): not an error of
    any input or output file, so it is raised apart from ``OSError``."""


class _GuardedStdout:
    """``sys.stdout`` for a command: a failed write or flush raises :class:`StdoutError`
    (a ``BrokenPipeError`` passes as it is); everything else is the stream's own."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def _guarded(self, call, *args):
        try:
            return call(*args)
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as exc:  # ValueError: the stream was closed
            raise StdoutError(str(getattr(exc, "strerror", None) or exc)) from None

    def write(self, text: str) -> int:
        return self._guarded(self._stream.write, text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._guarded(self._stream.flush)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


#: Commands that print their results on standard output (predict: unless --output).
_PRINTING = ("predict", "evaluate", "model", "compare", "demo")


def _open_std_fds() -> set[int]:
    """Point standard input, output and error at the null device where they are closed
    (``>&-``), so that no file ffeat opens later takes their number and receives what
    is printed; the numbers that were closed."""
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.add(fd)
    for fd in sorted(closed):
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    return closed


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    closed = _open_std_fds()
    argv = sys.argv[1:] if argv is None else list(argv)
    if 1 in closed and _chosen(argv) in _PRINTING and not _writes_a_file(argv):
        from ._common import fail
        return fail("standard output is closed; ffeat prints its results there: give it "
                    "a file or a pipe (or --output FILE.csv for predict)", 2)
    stdout = sys.stdout
    if stdout is not None:
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stdout.reconfigure(errors="backslashreplace")  # any encoding: never a crash
        sys.stdout = _GuardedStdout(stdout)
    try:
        status = _run(argv)
        if sys.stdout is not None:
            sys.stdout.flush()
        return status
    except BrokenPipeError:  # the reader went away (ffeat model | head): stop quietly,
        _silence_stdout()     # with the status of a Unix tool ended by SIGPIPE
        return 128 + signal.SIGPIPE
    except StdoutError as exc:  # closed or full: say so once, without a traceback
        _silence_stdout()
        from ._common import fail
        return fail(f"cannot write the results to standard output: {exc}")
    finally:
        if isinstance(sys.stdout, _GuardedStdout):
            sys.stdout = stdout


def _writes_a_file(argv: list[str]) -> bool:
    """Whether ``ffeat predict`` writes its rows to a file (``--output``, ``-o``)."""
    return any(a in ("--output", "-o") or a.startswith(("--output=", "-o")) for a in argv)


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
