"""A detector made of experts (issue 31): the rules against a NumPy oracle, the
estimator, the Detector route, model files (round trip, hostile arrays refused) and
adding an expert without refitting the others."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

import ffeat
from ffeat.models._experts import DEFAULT_RULE, RULES, Expert, ExpertSet
from ffeat.models._experts_fit import Experts, fit_expert
from ffeat.models._models import LinearModel
from ffeat.models._stacking import standardised_logistic
from conftest import resealed, saved_bytes


def _expert(rng, name, n_features=6):
    model = LinearModel(rng.normal(size=n_features), rng.uniform(0.5, 2, n_features),
                        rng.normal(size=n_features), rng.normal())
    return Expert(name, f"{name} source", model, np.array([rng.uniform(0.5, 2), rng.normal()]))


def _oracle(rule, P, weights, bias):
    """The combined log-odds by the rule's formula, computed plainly."""
    if rule == "max":
        p = P.max(axis=1)
    elif rule == "noisy-or":
        p = 1 - np.prod(1 - P, axis=1)
    else:
        return np.log(P / (1 - P)) @ weights + bias
    return np.log(p / (1 - p))


@pytest.mark.parametrize("rule", RULES)
def test_the_combined_score_is_the_rule_applied_to_the_experts_scores(rule):
    rng = np.random.default_rng(0)
    experts = [_expert(rng, n) for n in ("gan", "diffusion", "other")]
    weights, bias = np.array([0.5, 1.5, 0.0]), -0.25
    model = ExpertSet(experts, rule, weights, bias)
    X = rng.normal(size=(40, 6))
    P = np.column_stack([1 / (1 + np.exp(-(e.platt[0] * e.model.decision_function(X)
                                           + e.platt[1]))) for e in experts])
    np.testing.assert_allclose(model.expert_probabilities(X), P)
    np.testing.assert_allclose(model.decision_function(X), _oracle(rule, P, weights, bias),
                               rtol=1e-9, atol=1e-9)
    assert list(model.generator(X)) == [model.names[j] for j in P.argmax(axis=1)]


def test_adding_an_expert_leaves_the_others_untouched():
    rng = np.random.default_rng(1)
    model = ExpertSet([_expert(rng, "gan")], "max")
    added = model.with_expert(_expert(rng, "sdxl"))  # under max (and noisy-OR) never less
    X = rng.normal(size=(10, 6))
    assert added.names == ["gan", "sdxl"]
    np.testing.assert_array_equal(added.expert_probabilities(X)[:, 0],
                                  model.expert_probabilities(X)[:, 0])
    assert (added.decision_function(X) >= model.decision_function(X)).all()  # max: never less
    with pytest.raises(ValueError, match="must differ"):
        added.with_expert(_expert(rng, "gan"))


@pytest.mark.parametrize("name", ["", "a b", "../x", "x" * 65, "-gan"])
def test_expert_names_are_short_words(name):
    with pytest.raises(ValueError, match="expert name"):
        ExpertSet([_expert(np.random.default_rng(0), "gan")._replace(name=name)])


def _rows(seed=0, n=60):
    """Two fake families, each shifted along its own columns, and reals."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3 * n, 8))
    X[:n, 0] += 2.5
    X[n:2 * n, 1] += 2.5
    y = np.r_[np.ones(2 * n, int), np.zeros(n, int)]
    generator = np.array(["gan"] * n + ["diffusion"] * n + ["real"] * n, dtype=object)
    return X, y, generator


@pytest.mark.parametrize("rule", RULES)
def test_the_estimator_fits_one_expert_per_family_and_names_the_family(rule):
    X, y, generator = _rows()
    est = Experts(standardised_logistic(1.0, 0), rule).fit(X, y, generator=generator)
    assert est.experts_.names == ["gan", "diffusion"]
    assert est.oof_expert_log_odds_.shape == (len(y), 2)
    np.testing.assert_allclose(est.oof_log_odds_,
                               est.experts_.combine(1 / (1 + np.exp(-est.oof_expert_log_odds_))))
    guess = est.experts_.generator(X[y == 1])
    assert np.mean(guess == generator[y == 1]) > 0.9
    if rule == "combiner":
        assert (est.experts_.weights >= 0).all()
    with pytest.raises(ValueError, match="generator family"):
        Experts(standardised_logistic(1.0, 0)).fit(X, y)


def test_fit_expert_calibrates_on_out_of_fold_scores():
    X, y, generator = _rows()
    own = generator != "diffusion"
    expert, oof = fit_expert(standardised_logistic(1.0, 0), X[own], y[own], None, "gan")
    assert oof.shape == (own.sum(),) and expert.platt[0] > 0
    assert expert.name == "gan" and expert.model.coef.shape == (8,)


@pytest.fixture(scope="module")
def demo():
    images, labels = ffeat.make_demo_set(n_per_class=16, size=64)
    generator = np.where(np.arange(len(labels)) % 2, "gan", "diffusion")
    return images, labels, generator


@pytest.fixture(scope="module")
def fitted(demo):
    images, labels, generator = demo
    return ffeat.Detector(classifier="experts", cache=False, augment=None, jobs=1,
                          reading=ffeat.Reading()).fit(images, labels, generator=generator)


def test_the_detector_route_fits_experts_and_keeps_the_default_unchanged(fitted, demo):
    images, labels, generator = demo
    assert isinstance(fitted.model_, ExpertSet)
    assert fitted.model_.names == ["diffusion", "gan"]
    assert fitted.training_["generators"] == {
        g: int(((generator == g) & (labels == 1)).sum()) for g in ("diffusion", "gan")}
    assert fitted.predict_proba(images).shape == (len(images), 2)
    with pytest.raises(ValueError, match="generator="):
        ffeat.Detector(classifier="experts", cache=False).fit(images, labels)
    with pytest.raises(ValueError, match="no experts"):
        ffeat.Detector(cache=False).fit(images, labels, generator=generator)
    with pytest.raises(ValueError, match="expert name"):  # before any image is read
        ffeat.Detector(classifier="experts").fit(["missing.png"] * 2, [0, 1],
                                                 generator=["real", "Style GAN"])
    assert ffeat.Detector().classifier == "stacked"


def test_a_model_file_round_trips(fitted, demo):
    images = demo[0]
    data = saved_bytes(fitted)
    loaded = ffeat.Detector.load(io.BytesIO(data))
    assert isinstance(loaded.model_, ExpertSet)
    assert loaded.model_.names == fitted.model_.names and loaded.model_.rule == DEFAULT_RULE
    np.testing.assert_array_equal(loaded.predict_proba(images), fitted.predict_proba(images))
    assert saved_bytes(loaded) == data  # the same detector, the same bytes


def _set(key, value):
    def change(a):
        a[key] = value
        return a
    return change


def _drop(key):
    def change(a):
        del a[key]
        return a
    return change


@pytest.mark.parametrize("change, message", [
    (_set("model/rule", np.array("median")), "unknown rule"),
    (_set("model/names", np.array(["gan", "gan"])), "must differ"),
    (_set("model/names", np.array(["../x", "gan"])), "expert name"),
    (_set("model/names", np.array(["gan"])), "missing or .* unknown"),
    (_set("model/weights", np.array([-1.0, 1.0])), "non-negative"),
    (_set("model/weights", np.array([np.nan, 1.0])), "NaN"),
    (_set("model/expert0/platt", np.array([-1.0, 0.0])), "slope"),
    (_set("model/expert1/coef", np.zeros(3)), "expert 1"),
    (lambda a: _set("model/expert0/scale", np.zeros_like(a["model/expert0/scale"]))(a),
     "zeros"),
    (_drop("model/expert1/platt"), "missing"),
    (_set("model/sources", np.array([1, 2])), "sources"),
])
def test_hostile_model_files_are_refused(fitted, change, message):
    with pytest.raises(ffeat.ModelFileError, match=message):
        ffeat.Detector.load(resealed(saved_bytes(fitted), arrays=change))


def test_add_expert_fits_one_new_expert_and_leaves_the_input_unchanged(fitted, demo):
    images, labels, _ = demo
    before = saved_bytes(fitted)
    new = ffeat.add_expert(fitted, images, labels, name="sdxl")
    assert new.model_.names == [*fitted.model_.names, "sdxl"]
    assert saved_bytes(fitted) == before  # the detector given is not changed
    for old, kept in zip(fitted.model_.experts, new.model_.experts):
        np.testing.assert_array_equal(old.model.coef, kept.model.coef)
    assert new.training_["generators"]["sdxl"] == int(labels.sum())
    loaded = ffeat.Detector.load(io.BytesIO(saved_bytes(new)))
    assert loaded.model_.names == new.model_.names
    with pytest.raises(ValueError, match="already has an expert"):
        ffeat.add_expert(new, images, labels, name="sdxl")
    with pytest.raises(ValueError, match="expert name"):
        ffeat.add_expert(new, images, labels, name="no/slash")


def test_add_expert_refuses_a_detector_without_experts(demo):
    images, labels, _ = demo
    det = ffeat.Detector(cache=False, augment=None, jobs=1, reading=ffeat.Reading(),
                         calibration=None, band=None).fit(images, labels)
    with pytest.raises(ValueError, match="no experts"):
        ffeat.add_expert(det, images, labels, name="gan")


def test_the_command_writes_a_new_file_and_never_the_input(fitted, tmp_path, capsys):
    from ffeat.cli import main

    ffeat.write_demo_set(tmp_path / "data", n_per_class=8, size=64)
    model = tmp_path / "experts.model"
    fitted.save(model)
    before = model.read_bytes()
    link = tmp_path / "link.model"
    link.symlink_to(model)
    for out in (model, link):
        assert main(["add-expert", str(model), str(tmp_path / "data"), "--name", "sdxl",
                     "-o", str(out), "-q", "--no-cache", "-j", "1"]) == 2
    assert model.read_bytes() == before
    new = tmp_path / "new.model"
    assert main(["add-expert", str(model), str(tmp_path / "data"), "--name", "sdxl",
                 "-o", str(new), "-q", "--no-cache", "-j", "1"]) == 0
    assert ffeat.Detector.load(new).model_.names == [*fitted.model_.names, "sdxl"]
    assert model.read_bytes() == before
    assert main(["model", "--model", str(new)]) == 0
    assert "sdxl (8 fakes)" in capsys.readouterr().out


def test_predict_rows_name_the_generator_and_each_experts_probability(fitted, demo, tmp_path,
                                                                     capsys):
    import csv

    from ffeat.cli import main

    images = demo[0]
    records = fitted.score_records(images[:4])
    P = fitted.model_.expert_probabilities(fitted.features_.transform(images[:4]))
    np.testing.assert_allclose(np.array([r.experts for r in records]), P)
    ffeat.write_demo_set(tmp_path / "data", n_per_class=3, size=64)
    model = tmp_path / "experts.model"
    fitted.save(model)
    assert main(["predict", str(tmp_path / "data"), "--model", str(model), "--format", "json",
                 "-q", "--no-cache", "-j", "1"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = fitted.model_.names
    for row in rows:
        assert set(row["experts"]) == set(names)
        assert row["generator"] == max(row["experts"], key=row["experts"].get)
    assert main(["predict", str(tmp_path / "data"), "--model", str(model), "--format", "csv",
                 "-q", "--no-cache", "-j", "1"]) == 0
    printed = capsys.readouterr().out
    head = next(csv.reader(printed.splitlines()))
    assert head[-5:] == ["generator", *(f"prob_{n}" for n in names), "error", "path_escaped"]
    out = tmp_path / "scores.csv"  # the sharded file holds the same rows, experts included
    assert main(["predict", str(tmp_path / "data"), "--model", str(model), "-o", str(out),
                 "-q", "--no-cache", "-j", "1", "--shard-size", "2"]) == 0
    assert out.read_text().splitlines() == printed.splitlines()


def test_evaluate_reports_attribution_on_sources_named_after_experts(fitted, tmp_path):
    for family in ("gan", "diffusion"):
        ffeat.write_demo_set(tmp_path / "data" / family, n_per_class=3, size=64)
    result = ffeat.evaluate(fitted.set_params(jobs=1, cache=False), tmp_path / "data")
    attribution = result.attribution
    gen = np.array(result.generators, dtype=object)
    src = np.array(result.data_sources, dtype=object)
    fake = result.labels == 1
    assert attribution["n"] == int(fake.sum())
    assert attribution["accuracy"] == pytest.approx(np.mean(gen[fake] == src[fake]))
    assert "attribution" in result.to_dict()
    assert ffeat.Evaluation.of_records(None, [], [], 0.5).attribution is None


def test_train_names_the_families_after_the_top_level_folders(tmp_path):
    from ffeat.cli import main

    for family in ("gan", "diffusion"):
        ffeat.write_demo_set(tmp_path / "data" / family, n_per_class=6, size=64)
    model = tmp_path / "experts.model"
    options = ["--classifier", "experts", "--faces", "off", "--frame", "none", "--augment",
               "none", "-q", "--no-cache", "-j", "1"]
    assert main(["train", str(tmp_path / "data"), "-o", str(model), *options]) == 0
    assert sorted(ffeat.Detector.load(model).model_.names) == ["diffusion", "gan"]
    assert main(["train", str(tmp_path / "data" / "gan"), "-o", str(tmp_path / "flat.model"),
                 *options]) == 2


def test_the_report_names_the_generator_of_each_thumbnail(fitted, demo, tmp_path):
    pytest.importorskip("matplotlib")
    images, labels, _ = demo
    ffeat.write_report(fitted, images, tmp_path / "r", labels=labels, gallery_size=2, n_maps=0)
    html = (tmp_path / "r" / "index.html").read_text()
    assert "like gan" in html or "like diffusion" in html
