"""The multi-source corpus (benchmarks/_corpus.py) and protocol (benchmarks/sources.py),
on a small corpus of demo images laid out like ../shared/faces, so they run without
the real data."""
import inspect
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

import ffeat
from ffeat.reading._rows import feature_rows

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import _corpus, sources  # noqa: E402

#: Folder -> (side, JPEG quality) of the small corpus; 7 images per folder.
LAYOUT = {"140k/fake": (64, 75), "tpdne/fake": (72, 90), "hq/fake": (88, 90),
          "boredhumans/fake": (104, 95), "sdfd/fake": (96, 75), "140k/real": (64, 75),
          "tpdne/real": (72, 90), "hq/real": (88, 90), "utkface/real": (48, 75),
          "lfw/real": (56, 90), "unsplash/real": (80, 93), "studio/real": (112, 95)}
N = 7
#: One-row-per-image fits, so that the counts below are exact (the default ``recode``
#: copies of the smallest images fall under ``min_size``).
#: The synthetic corpus holds no faces: read whole images (``faces="off"``).
QUICK = {"features": "spectrum", "cache": False, "jobs": 1, "augment": None, "faces": "off"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    images, labels = ffeat.make_demo_set(n_per_class=N * 4, size=96)
    pools = {1: [im for im, y in zip(images, labels) if y == 1],
             0: [im for im, y in zip(images, labels) if y == 0]}
    for k, (folder, (side, quality)) in enumerate(LAYOUT.items()):
        (root / folder).mkdir(parents=True)
        pool = pools[int(folder.endswith("fake"))]
        for i in range(N):
            im = Image.fromarray(pool[(k * N + i) % len(pool)]).resize((side, side))
            im.save(root / folder / f"{i:02d}.jpg", quality=quality)
    return root


@pytest.fixture(scope="module")
def result(corpus):
    return sources.measure(QUICK, root=corpus)


def test_split_is_seeded_halves_of_the_sorted_files(corpus):
    train, test = _corpus.split("lfw", corpus)
    assert (len(train), len(test)) == (N // 2, N - N // 2)
    assert sorted(train + test) == _corpus.source_files("lfw", corpus)
    assert not set(train) & set(test)
    assert _corpus.split("lfw", corpus) == (train, test)  # the same for anyone
    order = np.random.default_rng(_corpus.SEED).permutation(N)
    assert train == [_corpus.source_files("lfw", corpus)[i] for i in order[:N // 2]]
    assert _corpus.split("lfw", corpus, n=2) == (train[:2], test[:2])


def test_training_mix_and_held_out_align_paths_labels_and_sources(corpus):
    mix = _corpus.training_mix("unsplash,sd21", corpus)
    assert mix.sources == ["sd21"] * (N // 2) + ["unsplash"] * (N // 2)  # SOURCES order
    assert mix.labels.tolist() == [1] * (N // 2) + [0] * (N // 2)
    assert all(p.parent.parent.name == ("sdfd" if s == "sd21" else "unsplash")
               for p, s in zip(mix.paths, mix.sources))
    held = _corpus.held_out(root=corpus)
    assert len(held.paths) == len(LAYOUT) * (N - N // 2)
    assert not set(held.paths) & set(_corpus.training_mix(root=corpus).paths)


def test_source_names_are_checked():
    with pytest.raises(ValueError, match="unknown source 'sd15'.*stylegan1"):
        _corpus.parse_names("sd21,sd15")
    with pytest.raises(ValueError, match="no source named"):
        _corpus.parse_names(" , ")


def test_missing_names_absent_folders(tmp_path, corpus):
    assert _corpus.missing(corpus) == []
    (tmp_path / "140k" / "real").mkdir(parents=True)
    assert _corpus.missing(tmp_path) == [s.folder for s in _corpus.SOURCES]
    assert len(_corpus.missing(tmp_path / "absent")) == len(_corpus.SOURCES)


def test_codec_is_read_from_the_files(corpus):
    assert sources.source_codec(_corpus.source_files("stylegan2", corpus)) == (72, 90)
    assert sources.controls(corpus) == {"64px q75": (64, 75), "72px q90": (72, 90),
                                        "88px q90": (88, 90), "104px q95": (104, 95),
                                        "96px q75": (96, 75)}


def test_recoded_copy_has_the_side_and_quality(corpus):
    path = _corpus.source_files("utkface", corpus)[0]
    copy = sources._Recoded(str(path), sources.Perturbation("jpeg", 90), side=72)
    rgb = copy.load()
    assert rgb.shape == (72, 72, 3)
    direct = Image.open(path).convert("RGB").resize((72, 72), Image.Resampling.BICUBIC)
    assert 0 < np.abs(rgb.astype(int) - np.asarray(direct)).mean() < 10  # re-encoded


def test_reading_parameters_pass_through():
    det = sources.make_detector({"faces": "auto", "jobs": 1, "cache": False})
    assert det.reading == ffeat.Reading(faces="auto", frame=256)  # the Detector's frame kept
    got = sources.reading_params(det)
    assert {"jobs": 1, "cache": False, "backend": "cpu", "reading": det.reading}.items() \
        <= got.items()
    # every Detector parameter the reading engine takes (frame too, where it exists)
    assert set(got) == set(inspect.signature(feature_rows).parameters) & set(det.get_params())


def test_protocol_reports_every_source(result):
    src = result["sources"]
    assert list(src) == list(_corpus.NAMES)
    half = N - N // 2
    for name, e in src.items():
        assert e["n_test"] == half and e["n_errors"] == 0
        rate = e["recall"] if e["role"] == "fake" else e["fpr"]
        assert 0 <= rate <= 1 and 0 <= e["auc"] <= 1
        if e["role"] == "real":
            assert set(e["controls"]) == {"64px q75", "72px q90", "88px q90", "104px q95",
                                          "96px q75"}
            assert "loso" not in e
        else:
            assert set(e["controls"]) == {"256px q75"}
            assert e["loso"]["left_out"] and 0 <= e["loso"]["recall"] <= 1
        for c in e["controls"].values():
            assert c["n"] == half and c["delta"] == pytest.approx(c["rate"] - rate)
    assert result["split"]["tpdne-real"] == {"train": N // 2, "test": half}
    assert result["cv_140k"]["n"] == 2 * N and result["overall"]["n"] == len(LAYOUT) * half
    assert result["n_training_rows"] == len(LAYOUT) * (N // 2)
    assert {"jobs": 1, "cache": False, "backend": "cpu", "faces": "off"}.items() <= \
        result["reading"].items()
    assert [t["target"] for t in result["targets"]] == [t[0] for t in sources.TARGETS]
    json.dumps(result)  # JSON-ready


def test_table_and_plot(result, tmp_path):
    table = sources.markdown(result)
    for name in _corpus.NAMES:
        assert f"| {name} | " in table
    assert "| source | role | in mix | n test | recall / FPR | AUC | LOSO recall" in table
    assert "sd21 recall >= 0.95" in table
    sources.plot(result, tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").size[0] > 500


def test_a_source_outside_the_mix_is_its_own_leave_out(corpus):
    out = sources.measure(QUICK, mix="ffhq,stylegan1,utkface", root=corpus, n=3)
    sd = out["sources"]["sd21"]
    assert not sd["in_mix"] and sd["n_train"] == 0 and not sd["loso"]["left_out"]
    assert sd["loso"]["recall"] == sd["recall"]
    assert out["sources"]["stylegan1"]["loso"] is None  # the mix without it has no fakes
    assert out["n_training_rows"] == 3 * 3


def test_augmented_rows_train_every_fit(corpus):
    out = sources.measure({**QUICK, "augment": "flip,jpeg"}, mix="ffhq,stylegan1,sd21",
                          root=corpus, n=3)
    assert out["n_training_rows"] == 3 * 3 * 3  # each image and its two copies


def test_main_skips_without_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FFEAT_FACES", str(tmp_path / "nothing"))
    assert sources.main(["--quick"]) == 0
    assert "FFEAT_FACES" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--param", "bogus=1"], "--param bogus: Detector has no such parameter; choose from"),
    (["--param", "augment"], "give KEY=VALUE"),
    (["--param", "C=-1"], "'C' parameter of Detector must be"),
    (["--train-sources", "ffhq,sd3"], "unknown source 'sd3'"),
])
def test_main_names_a_bad_argument(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        sources.main(args)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_param_values_are_typed():
    assert sources.parse_params(["frame=256", "C=0.5", "augment=jpeg,resize", "cache=false",
                                 "random_state=none"]) == {
        "frame": 256, "C": 0.5, "augment": "jpeg,resize", "cache": False, "random_state": None}


@pytest.mark.parametrize("augment", [None, "recode"])
def test_main_fit_is_the_detector_trained_on_the_mix(corpus, result, augment):
    params = {**QUICK, "augment": augment}
    if augment is not None:
        result = sources.measure(params, root=corpus)
    mix, held = _corpus.training_mix(root=corpus), _corpus.held_out(root=corpus)
    det = sources.make_detector(params).fit(mix.paths, mix.labels)
    z = det.decision_function(held.paths)  # the protocol thresholds the uncalibrated score
    sources_ = np.array(held.sources)
    for name, e in result["sources"].items():
        rate = e["recall"] if e["role"] == "fake" else e["fpr"]
        assert rate == pytest.approx(np.mean(z[sources_ == name] >= 0)), name
    assert result["overall"]["auc"] == pytest.approx(
        roc_auc_score(held.labels, z), abs=1e-3)


def test_an_expert_detector_learns_each_fake_family_from_its_source(corpus):
    out = sources.measure({**QUICK, "classifier": "experts"}, root=corpus)
    assert out["detector"]["classifier"] == "experts"
    for name in _corpus.FAKE:  # sd21 left out: the mix has one family (gan) left
        loso = out["sources"][name]["loso"]
        assert loso["left_out"] and 0 <= loso["recall"] <= 1, name
    assert out["cv_140k"]["n"] == 2 * N
