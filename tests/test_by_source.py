"""Tests of the per-source breakdown: ``Dataset.sources`` (top-level subfolders, a
manifest's source column), ``Evaluation.by_source``, ``ffeat evaluate`` (text, --json,
report)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import ffeat
from ffeat.cli import main
from ffeat.evaluation import source_breakdown
from conftest import WHOLE

N, SIZE = 6, 48  # the demo set of the conftest fixtures


def _demo(folder, seed: int, classes=("real", "fake"), n: int = 4) -> None:
    """``n`` demo images per class under ``folder``, keeping only ``classes``."""
    ffeat.write_demo_set(folder, n_per_class=n, size=SIZE, seed=seed)
    for name in {"real", "fake"} - set(classes):
        shutil.rmtree(folder / name)


@pytest.fixture(scope="module")
def sourced(tmp_path_factory):
    """``140k``-like ``both/{real,fake}``, ``gen/fake`` (fakes only), ``cam/real``."""
    root = tmp_path_factory.mktemp("sourced")
    _demo(root / "both", 3)
    _demo(root / "gen" / "train", 4, ("fake",))
    _demo(root / "cam", 5, ("real",))
    return root


@pytest.fixture(scope="module")
def model(demo, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.model"
    ffeat.Detector("gray", "logistic", cache=False, jobs=2, reading=WHOLE).fit(*demo).save(path)
    return path


# ------------------------------------------------------------------ Dataset.sources

def test_top_level_subfolders_are_the_sources(sourced):
    data = ffeat.load_dataset(sourced)
    assert len(data.sources) == len(data.paths) == 16
    for path, source in zip(data.paths, data.sources):
        assert path.startswith(str(sourced / source))
    assert sorted(set(data.sources)) == ["both", "cam", "gen"]
    paths, labels = data  # unpacks as the (paths, labels) pair it always was
    assert paths == data.paths and labels is data.labels
    assert data.counts() == (8, 8)


@pytest.mark.parametrize("layout", [["real", "fake"], ["a/real", "a/fake"],
                                    ["real", "b/fake", "b/real"]],
                         ids=["class folders", "one source", "class folder at the top"])
def test_no_sources_unless_every_image_is_in_one_of_several(layout, tmp_path):
    for k, folder in enumerate(layout):
        ffeat.write_demo_set(tmp_path / "w", n_per_class=2, size=SIZE, seed=k)
        kind = folder.split("/")[-1]
        shutil.copytree(tmp_path / "w" / kind, tmp_path / "d" / folder, dirs_exist_ok=True)
    data = ffeat.load_dataset(tmp_path / "d")
    assert data.sources is None and len(data.paths) == 2 * len(layout)


def _manifest(root, header: str, rows: list[str]):
    ffeat.write_demo_set(root, n_per_class=2, size=SIZE)
    path = root / "list.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_a_manifest_source_column_is_read(tmp_path):
    rows = ["real/0000.png,real,ffhq", "real/0001.png,real,lfw", "fake/0002.png,fake,sd",
            "fake/0003.png,fake,sd"]
    data = ffeat.load_dataset(_manifest(tmp_path, "path,label,Source", rows))
    assert data.sources == ["ffhq", "lfw", "sd", "sd"]
    other = _manifest(tmp_path, "path,label,gen", rows)
    assert ffeat.load_dataset(other).sources is None  # not named source: not read
    assert ffeat.load_dataset(other, source_column="gen").sources == data.sources
    with pytest.raises(ValueError, match="no column 'model'; columns are"):
        ffeat.load_dataset(other, source_column="model")


def test_a_manifest_row_without_a_source_is_refused(tmp_path):
    path = _manifest(tmp_path, "path,label,source", ["real/0000.png,real,ffhq",
                                                      "fake/0002.png,fake, "])
    with pytest.raises(ValueError, match=r"list.csv: 1 rows have no source in column "
                                         r"'source' \(e.g. line 3\)"):
        ffeat.load_dataset(path)


def test_sources_must_match_the_paths():
    with pytest.raises(ValueError, match="sources holds 1 names for 2 paths"):
        ffeat.Dataset(["a.png", "b.png"], np.array([0, 1]), ["x"])


# ------------------------------------------------------------------ the figures

def test_source_breakdown_by_hand():
    labels = np.array([0, 0, 1, 1, 1, 1, 0, 0])
    proba = np.array([0.1, 0.6, 0.7, 0.4, 0.9, 0.2, 0.3, 0.05])
    sources = ["mix", "mix", "mix", "mix", "gen", "gen", "cam", "cam"]
    got = source_breakdown(labels, proba, 0.5, sources)
    assert list(got) == ["cam", "gen", "mix"]
    assert got["mix"] == {"n": 4, "n_real": 2, "n_fake": 2, "recall": 0.5, "fpr": 0.5,
                          "accuracy": 0.5, "roc_auc": 0.75, "roc_auc_against": "within"}
    # gen's fakes (0.9, 0.2) against all four reals (0.1, 0.6, 0.3, 0.05): 4 + 2 of 8 pairs
    assert got["gen"] == {"n": 2, "n_real": 0, "n_fake": 2, "recall": 0.5, "fpr": None,
                          "accuracy": 0.5, "roc_auc": 0.75, "roc_auc_against": "pooled real"}
    assert got["cam"] == {"n": 2, "n_real": 2, "n_fake": 0, "recall": None, "fpr": 0.0,
                          "accuracy": 1.0, "roc_auc": None, "roc_auc_against": None}
    assert source_breakdown(labels, proba, 0.5, ["one"] * 8) is None
    assert source_breakdown(labels, proba, 0.5, None) is None


def test_evaluate_breaks_down_by_source(model, sourced):
    result = ffeat.evaluate(ffeat.Detector.load(model), sourced)
    assert list(result.by_source) == ["both", "cam", "gen"]
    assert sum(r["n"] for r in result.by_source.values()) == len(result.sources)
    assert result.by_source["gen"]["roc_auc_against"] == "pooled real"
    assert json.loads(json.dumps(result.to_dict()))["by_source"] == result.by_source
    single = ffeat.evaluate(ffeat.Detector.load(model), sourced / "both")
    assert single.by_source is None and "by_source" not in single.to_dict()


def test_unreadable_images_leave_their_source_rows(model, sourced, tmp_path):
    root = tmp_path / "d"
    shutil.copytree(sourced, root)
    (root / "gen" / "train" / "fake" / "broken.png").write_bytes(b"not an image")
    result = ffeat.evaluate(ffeat.Detector.load(model), root)
    assert len(result.errors) == 1 and result.by_source["gen"]["n"] == 4


# ------------------------------------------------------------------ command line

def test_cli_evaluate_prints_and_dumps_the_sources(model, sourced, capsys):
    assert main(["evaluate", "--model", str(model), str(sourced), "-q"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("by source"):].splitlines()[1:]
    assert table[0].split()[:4] == ["source", "images", "real", "fake"]
    assert [line.split()[0] for line in table[1:4]] == ["both", "cam", "gen"]
    assert table[3].endswith("pooled real")
    assert main(["evaluate", "--model", str(model), str(sourced), "--json", "-q"]) == 0
    dumped = json.loads(capsys.readouterr().out)
    assert set(dumped["by_source"]) == {"both", "cam", "gen"}
    assert main(["evaluate", "--model", str(model), str(sourced / "both"), "--json", "-q"]) == 0
    assert "by_source" not in json.loads(capsys.readouterr().out)


def test_the_report_has_a_source_table(model, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from ffeat.report import _plots, write_report

    monkeypatch.setattr(_plots, "_save", lambda fig, path: None)  # the page is under test
    _demo(tmp_path / "d" / "both", 3, n=2)  # 6 images: no t-SNE
    _demo(tmp_path / "d" / "gen", 4, ("fake",), n=2)
    report = write_report(ffeat.Detector.load(model), tmp_path / "d", tmp_path / "r",
                          gallery_size=1, n_maps=0)
    page = report.path.read_text()
    assert 'id="sources"' in page
    assert "pooled real" in page and "<td>gen</td>" in page
    assert report.summary["metrics"]["by_source"]["gen"]["n"] == 2
