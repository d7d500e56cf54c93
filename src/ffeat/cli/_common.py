"""What the subcommands share: error reporting and common options."""
from __future__ import annotations

import argparse
import contextlib
import sys
import warnings

from .._gpu import BACKENDS
from .._text import printable
from ..features import FAMILIES
from ..reading import DETECTOR_READING, NATIVE, Reading
from ..reading._framing import MAX_FRAME, MIN_FRAME
from ..reading._perturb import DETECTOR_AUGMENT, parse_augment
from ..reading.faces import FACE_POLICIES
from ..running._lock import OutputLockedError, locked
from ..running._manifest import ResumeError
from ..running._workers import MAX_JOBS
from ..running.streaming import DEFAULT_SHARD_SIZE, MAX_SHARD_SIZE


def _lines(message: str) -> str:
    """``message`` safe for a terminal: each of its lines :func:`~ffeat._text.printable`."""
    return "\n".join(printable(line) for line in message.split("\n"))


def fail(message: str, status: int = 1) -> int:
    """Print ``ffeat: error: message`` on stderr and return ``status``."""
    print(f"ffeat: error: {_lines(message)}", file=sys.stderr)
    return status


def warn(message: str) -> None:
    """Print ``ffeat: warning: message`` on stderr (also under ``--quiet``)."""
    print(f"ffeat: warning: {_lines(message)}", file=sys.stderr)


def say(args: argparse.Namespace, message: str) -> None:
    """A status line on stderr, unless ``--quiet``."""
    if not args.quiet:
        print(f"ffeat: {_lines(message)}", file=sys.stderr)


#: Largest value of any integer option without a bound of its own: every count an
#: option gives (epochs, batch size, workers...) is far below it, and values above it
#: would only end in errors deep inside (C integers, thread limits).
MAX_OPTION_INT = 1 << 20


def positive_int(text: str, maximum: int = MAX_OPTION_INT) -> int:
    """``type=`` of an integer option that means nothing below 1 nor above ``maximum``
    (argparse exits 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    if value > maximum:
        raise argparse.ArgumentTypeError(f"must be at most {maximum:,}, got {value}")
    return value


def _jobs(text: str) -> int:
    """``type=`` of ``--jobs``: any integer up to :data:`~ffeat.running._workers.MAX_JOBS` (below 1:
    all cores; argparse exits 2 above it)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value > MAX_JOBS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_JOBS} worker threads, got "
                                         f"{value}")
    return value


def add_run_options(parser: argparse.ArgumentParser, *, cache: bool = True) -> None:
    """``--jobs``, ``--backend``, ``--quiet`` and (optionally) ``--no-cache``."""
    parser.add_argument("--jobs", "-j", type=_jobs, default=None, metavar="N",
                        help=f"parallel worker threads, at most {MAX_JOBS} (default, or "
                             "N < 1: all cores)")
    parser.add_argument("--backend", choices=BACKENDS, default="cpu",
                        help="where features are computed: cpu, cuda (CuPy and an NVIDIA "
                             "GPU: pip install 'ffeat[cuda]'), or auto (cuda when "
                             "available; default: cpu)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bar and no summary")
    if cache:
        parser.add_argument("--no-cache", dest="cache", action="store_false",
                            help="do not read or write the feature cache "
                                 "($FFEAT_CACHE_DIR, default ~/.cache/ffeat)")


def add_faces_option(parser: argparse.ArgumentParser, default: str | None,
                     shown: str = "the model's own") -> None:
    """``--faces``: the face policy, ``default`` when not given (None: what ``shown``
    says, resolved by the command)."""
    shown = default or shown
    parser.add_argument("--faces", choices=FACE_POLICIES, default=default,
                        help="off: the whole image; crop: find the frontal faces, score "
                             "each in the framing of the aligned training faces, the most "
                             "fake one counts (no face: an error row); auto: as crop, the "
                             "whole image when no face is found; align: find each face's "
                             "landmarks and cut it as FFHQ's faces were cut (dlib; no face: "
                             f"an error row) (default: {shown})")


def reading_of(args: argparse.Namespace, *, whole: bool = False) -> Reading:
    """The :class:`~ffeat.Reading` of a command's ``--faces`` and ``--frame`` (made and
    checked once, here, for every command that trains or extracts). Without ``--faces``
    (None) the Detector's own face policy, or the whole image for a detector that reads
    whole images (``whole``: the CNN); a command without the option reads whole images."""
    faces = getattr(args, "faces", "off")
    if faces is None:
        faces = "off" if whole else DETECTOR_READING.faces
    return Reading(faces=faces, frame=args.frame)


def faces_reading(detector, faces: str | None) -> dict:
    """``{"reading": ...}``: a saved feature model's reading with the face policy of
    ``--faces`` when it was given; ``{}`` otherwise (and for the CNN, which reads
    whole images)."""
    if faces is None or not hasattr(detector, "reading"):
        return {}
    return {"reading": detector.reading.replace(faces=faces)}


def _frame(text: str) -> int | None:
    """``type=`` of ``--frame``: a side in pixels, or ``none`` (argparse exits 2)."""
    if text.strip().lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not MIN_FRAME <= value <= MAX_FRAME:
        raise argparse.ArgumentTypeError(f"give a side in pixels from {MIN_FRAME} to "
                                         f"{MAX_FRAME}, or none; got {text!r}")
    return value


def add_frame_option(parser: argparse.ArgumentParser, default: int | None = NATIVE.frame
                     ) -> None:
    """``--frame N|none``: the canonical analysis frame of the feature families."""
    parser.add_argument("--frame", type=_frame, default=default, metavar="N|none",
                        help="read each image (or face crop) as its centre square resized "
                             "to N x N px, so that source size cannot separate the "
                             "classes; none: native size, uncropped (feature classifiers; "
                             "the CNN resizes whole images to --input-size) (default: "
                             f"{default or 'none'})")


def _augment(text: str) -> tuple[str, ...]:
    """``type=`` of ``--augment``: augmentation kinds, or ``none`` (argparse exits 2)."""
    if text.strip().lower() == "none":
        return ()
    try:
        return parse_augment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_augment_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--augment KINDS|none``: the training augmentation; absent, each detector's own."""
    parser.add_argument("--augment", metavar="KINDS|none", type=_augment, default=None,
                        help=f"{help} (default: {DETECTOR_AUGMENT} for the feature "
                             "classifiers, as the shipped model; none for the CNN)")


def augment_params(args: argparse.Namespace) -> dict:
    """``{"augment": ...}`` for the detector when ``--augment`` was given, else ``{}``
    (each kind of detector keeps its own default)."""
    return {} if args.augment is None else {"augment": list(args.augment) or None}


def add_scale_options(parser: argparse.ArgumentParser) -> None:
    """``--shard-size``, ``--scheduler`` and ``--workers`` of sharded runs."""
    parser.add_argument("--shard-size", type=lambda t: positive_int(t, MAX_SHARD_SIZE),
                        default=None, metavar="N",
                        help=f"inputs per shard of a sharded run, at most {MAX_SHARD_SIZE:,} "
                             f"(default {DEFAULT_SHARD_SIZE})")
    parser.add_argument("--scheduler", default=None, metavar="local|ADDRESS",
                        help="run the shards on dask.distributed (pip install "
                             "'ffeat[dask]'): 'local' starts --workers worker processes "
                             "on this machine, tcp://HOST:8786 uses a running scheduler")
    parser.add_argument("--workers", type=lambda t: positive_int(t, MAX_JOBS), default=2,
                        metavar="N", help=f"worker processes of --scheduler local, at most "
                                          f"{MAX_JOBS} (default 2)")


def holding_lock(out, run, *args) -> int:
    """``run(*args)``, a command's exit status, while holding ``out``'s lock: from the first
    read to the final rename, one writer at a time. Exit 2 when another run holds it, 1
    when the lock file cannot be made (a read-only folder, not ours)."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(locked(out))
        except OutputLockedError as exc:
            return fail(str(exc), 2)
        except OSError as exc:
            return fail(f"cannot lock {out}: {exc}")
        return run(*args)


def run_sharded(args: argparse.Namespace, run, *positional, **options) -> int:
    """Call ``run`` (:func:`ffeat.extract_to` or :func:`ffeat.predict_to`) with the
    sharding options of ``args``; print its summary; the exit status."""
    try:
        summary = run(*positional, shard_size=args.shard_size or DEFAULT_SHARD_SIZE,
                      scheduler=args.scheduler, workers=args.workers, jobs=args.jobs,
                      progress=progress(args), cache=args.cache, backend=args.backend,
                      **options)
    except (ResumeError, OutputLockedError, ImportError) as exc:  # another run's output
        return fail(str(exc), 2)  # or one being written now; dask not installed
    except OSError as exc:  # the output cannot be written, the scheduler not reached
        return fail(str(exc))
    say(args, str(summary))
    if not summary.total_done:
        return fail("no image could be read; the errors are in the output")
    return 0


def add_features_option(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--features", nargs="+", default=list(default), metavar="FAMILY",
                        help=f"feature families, of {', '.join(FAMILIES)} "
                             f"(default: {' '.join(default)})")


def add_cnn_options(parser: argparse.ArgumentParser) -> None:
    """``--epochs``, ``--batch-size``, ``--input-size``, ``--patience`` (CNN only)."""
    group = parser.add_argument_group("CNN (--classifier cnn; needs PyTorch: pip install "
                                      "'ffeat[cnn]')")
    group.add_argument("--epochs", type=positive_int, default=30, metavar="N",
                       help="most passes over the training images (default: 30)")
    group.add_argument("--batch-size", type=positive_int, default=32, metavar="N",
                       help="images per gradient step (default: 32)")
    group.add_argument("--input-size", type=lambda t: positive_int(t, 4096), default=128,
                       metavar="PX",
                       help="side images are resized to, at least 32 (default: 128)")
    group.add_argument("--patience", type=positive_int, default=5, metavar="N",
                       help="epochs without a better validation loss before training "
                            "stops (default: 5)")


def cnn_params(args: argparse.Namespace) -> dict:
    """The CnnDetector parameters ``add_cnn_options`` set."""
    return {"epochs": args.epochs, "batch_size": args.batch_size,
            "input_size": args.input_size, "patience": args.patience}


def add_model_option(parser: argparse.ArgumentParser) -> None:
    """``--model FILE``: the model to use; without it, the detector shipped with ffeat."""
    parser.add_argument("--model", metavar="FILE", default=None,
                        help="a model written by ffeat train (default: the detector "
                             "shipped with ffeat; ffeat model prints its card)")


def model_file(args: argparse.Namespace) -> str:
    """The model file a command uses: ``--model``, or the shipped detector's."""
    from ..models._shipped import model_path

    return args.model if args.model is not None else str(model_path())


def add_threshold_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--threshold T``: probability of fake at and above which ``what`` is called fake."""
    parser.add_argument("--threshold", type=float, default=None, metavar="T",
                        help=f"probability of fake at and above which {what} is called fake "
                             "(default: the model's, 0.5)")


def threshold_problem(threshold: float | None) -> str | None:
    """Why a ``--threshold`` value is unusable, or None when it is fine (or not given)."""
    if threshold is None or 0 <= threshold <= 1:
        return None
    return f"--threshold must lie in [0, 1], got {threshold}"


def add_classes_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classes", nargs="+", default=None, metavar="NAME=real|fake",
                        help="folder names (or manifest label values) of the classes when "
                             "they are not real/ and fake/, e.g. ffhq=real stylegan2=fake")


def parse_classes(values: list[str] | None) -> dict[str, str] | None:
    """``["ffhq=real", ...]`` to a mapping; ValueError on a malformed entry."""
    if not values:
        return None
    mapping = {}
    for v in values:
        name, sep, label = v.partition("=")
        if not sep or not name or label.lower() not in ("real", "fake", "0", "1"):
            raise ValueError(f"--classes entries are NAME=real or NAME=fake, got {v!r}")
        mapping[name] = label
    return mapping


def progress(args: argparse.Namespace) -> bool | None:
    """Progress bar setting: on a terminal unless ``--quiet``."""
    return False if args.quiet else None


def report_skipped(errors) -> None:
    """One stderr line per input that could not be read."""
    for err in errors:
        print(f"ffeat: skipped {printable(str(err.source))}: {printable(err.reason)}",
              file=sys.stderr)


class quiet_warnings(warnings.catch_warnings):
    """Silence library warnings that the command reports itself."""

    def __enter__(self):
        super().__enter__()
        warnings.simplefilter("ignore")
