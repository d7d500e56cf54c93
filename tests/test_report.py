"""The evaluation report, robustness perturbations and training augmentation.

Everything runs on the embedded demo data at small sizes; report tests skip
cleanly where matplotlib is not installed.
"""
from __future__ import annotations

import contextlib
import html.parser
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ffeat
from ffeat.models import _persist
from ffeat.reading._perturb import Perturbation, Perturbed, parse_augment, parse_perturbations
from ffeat.cli import main
from conftest import WHOLE

SPECIAL = "a<b>&\"c'"  # a file name with every HTML special character
SECTIONS = ("summary", "metrics", "curves", "scores", "cross-dataset", "galleries", "spectra",
            "embedding", "explanations", "maps", "dataset", "robustness")


class _Page(html.parser.HTMLParser):
    """Ids, image sources and headings of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids, self.srcs, self.headings, self._in_h = set(), [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.srcs.append(attrs["src"])
        self._in_h = tag in ("h2", "h3")

    def handle_data(self, data):
        if self._in_h:
            self.headings.append(data)
            self._in_h = False


def _snapshot(folder: Path) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A detector trained on one demo set (seed 1), saved."""
    root = tmp_path_factory.mktemp("train")
    ffeat.write_demo_set(root / "data", n_per_class=16, size=64, seed=1)
    path = root / "demo.model"
    assert main(["train", str(root / "data"), "--faces", "off",
                 "-o", str(path), "-q", "--no-cache"]) == 0
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Another demo set (seed 2) with a file named with HTML specials and an unreadable one."""
    root = tmp_path_factory.mktemp("eval") / "data"
    ffeat.write_demo_set(root, n_per_class=12, size=64, seed=2)
    os.rename(root / "real" / "0000.png", root / "real" / f"{SPECIAL}.png")
    (root / "fake" / f"bad{SPECIAL}.png").write_bytes(b"not an image")
    return root


@pytest.fixture(scope="module")
def report(model, data, tmp_path_factory):
    """``ffeat evaluate --report --perturb --json`` run once; returns what it left."""
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("report") / "out"
    before = _snapshot(data)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(["evaluate", "--model", str(model), str(data), "--report", str(out), "--json",
                       "-q", "--no-cache", "--perturb", "jpeg=90,50", "--perturb",
                       "resize=0.5", "--perturb", "blur=1", "--perturb", "noise=3"])
    assert status == 0, stderr.getvalue()
    page = (out / "index.html").read_text(encoding="utf-8")
    parsed = _Page()
    parsed.feed(page)
    return {"out": out, "page": page, "parsed": parsed, "json": json.loads(stdout.getvalue()),
            "before": before, "after": _snapshot(data)}


# -- the report ----------------------------------------------------------------------------


def test_report_has_every_section(report):
    for ident in SECTIONS:
        assert ident in report["parsed"].ids, f"section {ident!r} missing"
    headings = " | ".join(report["parsed"].headings)
    for heading in ("Metrics", "Confusion matrix", "False positives", "False negatives",
                    "Most confident correct: real", "Most confident correct: fake",
                    "Coefficients", "Permutation importance", "Class counts", "Robustness"):
        assert heading in headings
    for fragment in ("ROC AUC", "average precision", "equal error rate", "called fake",
                     "equal error rate (this data)", "best accuracy (this data)",
                     "They differ", "jpeg=50", "resize=0.5"):
        assert fragment in report["page"], fragment


def test_every_referenced_image_exists(report):
    srcs = report["parsed"].srcs
    names = {Path(s).name for s in srcs}
    for figure in ("curves.png", "scores.png", "spectra.png", "residual_spectrum.png",
                   "embedding.png", "coefficients.png", "permutation.png", "dataset.png",
                   "robustness.png"):
        assert figure in names
    assert any(s.startswith("thumbs/") for s in srcs)
    assert any(s.startswith("maps/") for s in srcs)
    for src in srcs:
        assert not src.startswith(("http:", "https:", "//", "/")), src
        path = report["out"] / src
        assert path.is_file() and path.stat().st_size > 100, src
    assert "<script" not in report["page"]


def test_file_names_are_escaped(report):
    page = report["page"]
    assert SPECIAL not in page
    assert "a&lt;b&gt;&amp;&quot;c&#x27;" in page  # in a gallery
    assert "bada&lt;b&gt;" in page  # the unreadable file in the summary


def test_report_leaves_inputs_untouched(report):
    assert report["before"] == report["after"]


def test_json_has_robustness_and_report_json(report):
    rows = report["json"]["robustness"]
    assert [r["label"] for r in rows] == ["clean", "jpeg=90", "jpeg=50", "resize=0.5",
                                         "blur=1", "noise=3"]
    assert rows[0]["roc_auc"] == report["json"]["roc_auc"]
    assert all(0 <= r["roc_auc"] <= 1 and r["n_scored"] == 24 for r in rows)
    saved = json.loads((report["out"] / "report.json").read_text())
    assert saved["robustness"] == rows
    assert saved["same_data_as_training"] is False
    assert saved["training"]["data"].endswith("data")
    assert [t["name"] for t in saved["thresholds"]][1:] == [
        "equal error rate (this data)", "best accuracy (this data)"]


def test_library_report_on_in_memory_images(tmp_path):
    pytest.importorskip("matplotlib")
    images, labels = ffeat.make_demo_set(n_per_class=6, size=48, seed=3)
    det = ffeat.Detector(cache=False, jobs=1, reading=WHOLE).fit(images, labels)
    copies = [im.copy() for im in images]
    rep = ffeat.write_report(det, images, tmp_path / "r", labels=labels, perturb=["flip"],
                             gallery_size=3, n_maps=1)
    assert all((a == b).all() for a, b in zip(images, copies))
    assert rep.path.is_file() and rep.robustness[1]["label"] == "flip"
    assert "same data" in rep.path.read_text() or "unknown" in rep.path.read_text()


def test_report_without_matplotlib_says_what_to_install(model, data, tmp_path, monkeypatch,
                                                        capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert main(["evaluate", "--model", str(model), str(data), "--report", str(tmp_path / "r")]) == 1
    assert 'pip install "ffeat[report]"' in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    with pytest.raises(ImportError, match="ffeat\\[report\\]"):
        ffeat.write_report(None, [], tmp_path / "r")


def test_import_ffeat_does_not_import_matplotlib():
    code = "import sys, ffeat; assert 'matplotlib' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- perturbations ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec, message", [
    ("jpeg=abc", "not a number"), ("sharpen=1", "unknown perturbation"),
    ("jpeg", "give jpeg=VALUE"), ("jpeg=", "give jpeg=VALUE"), ("jpeg=150", "must lie in"),
    ("resize=0", "must lie in"), ("jpeg=70.5", "whole number"), ("flip=1", "takes no values"),
    ("blur=1,,2", "give blur=VALUE"),
])
def test_perturb_parsing_errors_exit_2(model, data, spec, message, capsys):
    assert main(["evaluate", "--model", str(model), str(data), "--perturb", spec, "-q"]) == 2
    err = capsys.readouterr().err
    assert "ffeat: error: --perturb" in err and message in err


def test_parse_perturbations_expands_and_deduplicates():
    got = parse_perturbations(["jpeg=90,70", "blur=1", "jpeg=70", "flip"])
    assert [p.label for p in got] == ["jpeg=90", "jpeg=70", "blur=1", "flip"]


def test_perturbations_change_pixels_deterministically_and_copy():
    rgb = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    keep = rgb.copy()
    for p in parse_perturbations(["jpeg=50", "resize=0.5", "blur=2", "noise=5", "flip"]):
        a = p.apply(rgb, np.random.default_rng(7))
        b = p.apply(rgb, np.random.default_rng(7))
        assert a.dtype == np.uint8 and (a == b).all() and not np.shares_memory(a, rgb)
        assert a.shape == ((32, 24, 3) if p.kind == "resize" else rgb.shape)
        assert a.shape != rgb.shape or (a != rgb).any(), p.label
    assert (rgb == keep).all()


def test_reframe_crops_the_centre_or_centres_on_a_canvas_without_resampling():
    rgb = np.random.default_rng(1).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1] = 7, 7, 7, 7  # the border's median colour
    tight = Perturbation("reframe", 1.5).apply(rgb)
    assert tight.shape == (40, 60, 3)
    np.testing.assert_array_equal(tight, rgb[10:50, 15:75])
    loose = Perturbation("reframe", 0.5).apply(rgb)
    assert loose.shape == (120, 180, 3)
    np.testing.assert_array_equal(loose[30:90, 45:135], rgb)
    assert (loose[:30] == 7).all() and (loose[:, :45] == 7).all()
    np.testing.assert_array_equal(Perturbation("reframe", 1).apply(rgb), rgb)
    with pytest.raises(ValueError, match="reframe strength"):
        Perturbation("reframe", 0.25)


def test_perturbed_files_are_never_modified(tmp_path):
    paths = ffeat.write_demo_set(tmp_path / "d", n_per_class=2, size=64)
    before = _snapshot(tmp_path / "d")
    items = [Perturbed(p, Perturbation(kind, s), seed=i) for i, p in enumerate(paths)
             for kind, s in (("jpeg", 30), ("resize", 0.75), ("blur", 2), ("noise", 9),
                             ("flip", None))]
    result = ffeat.extract(items, features="spectrum")
    assert result.X.shape == (len(items), 64) and not result.errors
    assert _snapshot(tmp_path / "d") == before


def test_resize_below_min_size_is_an_unreadable_row():
    rgb = np.zeros((40, 40, 3), np.uint8)
    result = ffeat.extract([Perturbed(rgb, Perturbation("resize", 0.5), name="small")],
                           features="spectrum")
    assert result.X.shape[0] == 0
    assert "below the 32 px minimum" in result.errors[0].reason


def test_robustness_library_function_keeps_arrays():
    images, labels = ffeat.make_demo_set(n_per_class=8, size=48, seed=4)
    copies = [im.copy() for im in images]
    det = ffeat.Detector(cache=False, jobs=1, reading=WHOLE).fit(images, labels)
    rows = ffeat.robustness(det, images, ["noise=2,8"], labels)
    assert [r["label"] for r in rows] == ["clean", "noise=2", "noise=8"]
    assert all((a == b).all() for a, b in zip(images, copies))


# -- augmentation ----------------------------------------------------------------------------


def test_augment_adds_one_copy_per_image_and_kind():
    images, labels = ffeat.make_demo_set(n_per_class=6, size=64, seed=5)
    det = ffeat.Detector(cache=False, jobs=1, augment="jpeg,blur,resize,flip",
                         reading=WHOLE).fit(images, labels)
    t = det.training_
    assert (t["n_real"], t["n_fake"], t["n_rows"]) == (6, 6, 12 * 5)
    assert t["augment"] == ["jpeg", "blur", "resize", "flip"]
    plain = ffeat.Detector(cache=False, jobs=1, augment=None, reading=WHOLE).fit(images, labels)
    assert plain.training_["n_rows"] == 12 and plain.training_["augment"] == []
    default = ffeat.Detector(cache=False, jobs=1, reading=WHOLE).fit(images, labels)
    assert default.training_["augment"] == ["recode", "reframe"]
    assert default.training_["n_rows"] + default.training_["n_augment_errors"] == 36
    again = ffeat.Detector(cache=False, jobs=1, augment=["jpeg", "blur", "resize", "flip"],
                           reading=WHOLE)
    np.testing.assert_array_equal(again.fit(images, labels).model_.coef, det.model_.coef)


def test_parse_augment_rejects_unknown_and_repeated():
    assert parse_augment("jpeg, blur") == ("jpeg", "blur")
    with pytest.raises(ValueError, match="unknown augmentation 'sharpen'"):
        parse_augment("jpeg,sharpen")
    with pytest.raises(ValueError, match="once"):
        parse_augment(["jpeg", "jpeg"])


def test_train_augment_cli_records_data_and_augment(tmp_path):
    ffeat.write_demo_set(tmp_path / "d", n_per_class=5, size=64)
    out = tmp_path / "m.model"
    assert main(["train", str(tmp_path / "d"), "--faces", "off",
                 "-o", str(out), "--augment", "jpeg,flip",
                 "-q", "--no-cache"]) == 0
    det = ffeat.Detector.load(out)
    assert det.training_["n_rows"] == 30 and det.augment == ["jpeg", "flip"]
    assert det.training_["data"] == str((tmp_path / "d").resolve())


def test_models_saved_before_augment_and_data_still_load(model, tmp_path):
    """Files without the ``augment`` parameter or the training data path load as before."""
    with np.load(model, allow_pickle=False) as z:
        content = {k: z[k] for k in z.files}
    meta = json.loads(str(content["meta"]))
    del meta["params"]["augment"]
    meta["training"] = {k: meta["training"][k] for k in ("n_real", "n_fake", "n_errors")}
    text = json.dumps(meta)
    arrays = {k: v for k, v in content.items() if k.startswith(("model/", "calibration/"))}
    old = tmp_path / "old.model"
    with open(old, "wb") as fh:
        np.savez(fh, meta=np.array(text),
                 checksum=np.array(_persist._checksum(text, arrays)), **arrays)
    det = ffeat.Detector.load(old)
    assert det.augment is None and "data" not in det.training_


@pytest.mark.parametrize("order", [("gray", "spectrum", "residual", "hog", "lbp"),
                                   ("lbp", "residual", "spectrum")])
def test_column_groups_keep_each_grid_family_whole(order):
    from ffeat.families import column_groups, resolve_features
    families = resolve_features(order)
    names = [n for f in families for n in f.feature_names()]
    groups = dict(column_groups(families))
    assert len(groups) == sum({"gray": 1, "spectrum": 8, "residual": 3 * 5, "hog": 1,
                               "lbp": 1}[f] for f in order)
    spectrum = [f"spectrum_{k:03d}" for k in range(64)]
    expected = {"gray pixels": lambda n: n.startswith("gray_"),
                "hog gradient histograms": lambda n: n.startswith("hog_"),
                "lbp texture histograms": lambda n: n.startswith("lbp_"),
                "residual Cb o3": lambda n: n.startswith("residual_Cb_o3_"),
                "spectrum 0.00-0.09 cyc/px": lambda n: n in spectrum[:8],
                "spectrum 0.62-0.71 cyc/px": lambda n: n in spectrum[56:]}
    for key, member in expected.items():
        if key.split()[0] in order:
            np.testing.assert_array_equal(groups[key],
                                          [i for i, n in enumerate(names) if member(n)])
    assert sorted(np.concatenate(list(groups.values()))) == list(range(len(names)))
