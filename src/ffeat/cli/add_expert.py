"""``ffeat add-expert``: a new generator's expert added to an expert model, written to a
new file (the input model is never changed)."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from ..reading.dataset import load_dataset
from ._common import (
    add_classes_option,
    add_run_options,
    fail,
    holding_lock,
    parse_classes,
    progress,
    quiet_warnings,
    say,
)
from ._output import claim_output


def _run(args: argparse.Namespace) -> int:
    from ..detector import Detector
    from ..models._persist import ModelFileError

    out = Path(args.output)
    if not Path(os.path.realpath(out)).parent.is_dir():
        return fail(f"folder {out.parent} of the output does not exist", 2)
    try:
        dataset = load_dataset(args.data, parse_classes(args.classes))
    except ValueError as exc:
        return fail(str(exc), 2)
    # the input model counts as an input: the output may be neither it nor a link to it
    if (problem := claim_output(out, [args.model, args.data, *dataset.paths])) is not None:
        return fail(problem, 2)
    try:
        detector = Detector.load(args.model).set_params(jobs=args.jobs, cache=args.cache,
                                                        backend=args.backend)
    except ModelFileError as exc:
        return fail(str(exc), 2)
    return holding_lock(out, _add, args, out, dataset, detector)


def _add(args: argparse.Namespace, out: Path, dataset, detector) -> int:
    """Fit the new expert on ``dataset`` and save the detector to ``out`` (locked)."""
    from ..experts import add_expert

    n_real, n_fake = dataset.counts()
    say(args, f"adding expert {args.name!r} from {n_fake} fake and {n_real} real images to "
              f"{args.model} (experts: {', '.join(getattr(detector.model_, 'names', []))})")
    start = time.perf_counter()
    try:
        with quiet_warnings():
            new = add_expert(detector, dataset, name=args.name, progress=progress(args))
    except ValueError as exc:
        return fail(str(exc))
    try:
        new.save(out)
    except OSError as exc:
        return fail(f"cannot write {out}: {exc}")
    say(args, f"wrote {out}: experts {', '.join(new.model_.names)} (the new one fitted in "
              f"{time.perf_counter() - start:.1f} s)")
    return 0


def add_parser(sub, summary: str) -> None:
    """Register ``ffeat add-expert``."""
    p = sub.add_parser(
        "add-expert", help=summary,
        description="Fit one expert on DATA (a folder with real/ and fake/ images, or a CSV "
                    "manifest: 50-200 images of the new generator as fakes, and real "
                    "photographs) and write MODEL with that expert added as a new file; "
                    "the model's other experts, rule and calibration are kept as they are. "
                    "MODEL must have been trained with --classifier experts.")
    p.add_argument("model", metavar="MODEL", help="an expert model file (not changed)")
    p.add_argument("data", metavar="DATA", help="dataset folder or CSV manifest")
    p.add_argument("--name", required=True,
                   help="the new expert's name, e.g. sdxl (letters, digits, - _ .)")
    p.add_argument("-o", "--output", required=True, metavar="NEW_MODEL",
                   help="where to write the new model (not MODEL itself, nor a link to it)")
    add_classes_option(p)
    add_run_options(p)
    p.set_defaults(func=_run)
