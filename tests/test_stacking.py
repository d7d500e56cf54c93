"""The stacked classifier: per-block logistic regressions and their combiner."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_estimator

import ffeat
from ffeat.models._models import LinearModel, make_estimator
from ffeat.models import _stacking
from ffeat.models._stacking import StackedLogistic, standardised_logistic


def _data(n=120, seed=0):
    """Block 1: 3 informative columns; block 2: 40 noise columns; block 3: 1 weak one."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    strong = rng.normal(size=(n, 3)) + 1.5 * y[:, None]
    noise = rng.normal(size=(n, 40))
    weak = rng.normal(size=(n, 1)) + 0.3 * y[:, None]
    return np.hstack([strong, noise, weak]), y, (3, 40, 1)


def test_folded_linear_model_scores_exactly_like_the_stack():
    X, y, blocks = _data()
    stack = StackedLogistic(blocks=blocks).fit(X, y)
    folded = LinearModel.from_estimator(stack)
    np.testing.assert_allclose(folded.decision_function(X), stack.decision_function(X),
                               rtol=1e-10, atol=1e-10)
    assert folded.coef.shape == (44,)


def test_each_block_gets_a_model_and_the_informative_block_dominates():
    X, y, blocks = _data()
    stack = StackedLogistic(blocks=blocks).fit(X, y)
    assert len(stack.models_) == 3
    weights = np.abs(stack.combiner_.coef_[0])
    assert weights[0] > 3 * weights[1]
    assert roc_auc_score(y, stack.decision_function(X)) > 0.9


def test_wide_blocks_get_a_proportionally_smaller_C(monkeypatch):
    monkeypatch.setattr(_stacking, "WIDTH", 10)
    X, y, blocks = _data()
    stack = StackedLogistic(blocks=blocks, C=0.2).fit(X, y)
    assert stack.C_ == pytest.approx([0.2, 0.2 * 10 / 40, 0.2])
    alone = standardised_logistic(0.05, 0).fit(X[:, 3:43], y)
    np.testing.assert_allclose(stack.models_[1][-1].coef_, alone[-1].coef_)


def test_one_block_is_a_monotone_map_of_its_model():
    X, y, _ = _data()
    stack = StackedLogistic().fit(X, y)
    alone = standardised_logistic(stack.C_[0], 0).fit(X, y)
    assert stack.combiner_.coef_[0][0] > 0
    np.testing.assert_array_equal(np.argsort(stack.decision_function(X)),
                                  np.argsort(alone.decision_function(X)))


def test_predict_and_clone():
    X, y, blocks = _data()
    stack = clone(StackedLogistic(blocks=blocks, random_state=3)).fit(X, y)
    assert stack.get_params()["random_state"] == 3
    assert set(stack.predict(X)) <= {0, 1}
    assert (stack.predict(X) == y).mean() > 0.8


def test_make_estimator_builds_the_stack_with_the_family_blocks():
    est = make_estimator("stacked", C=0.3, max_iter=1, learning_rate=0.1, random_state=5,
                         blocks=(3, 4))
    assert isinstance(est, StackedLogistic)
    assert (est.blocks, est.C, est.random_state) == ((3, 4), 0.3, 5)


def test_blocks_that_do_not_partition_the_columns_are_refused():
    X, y, _ = _data()
    with pytest.raises(ValueError, match=r"blocks \[3, 4\] do not partition 44 columns"):
        StackedLogistic(blocks=(3, 4)).fit(X, y)


@pytest.mark.parametrize("labels", [[0] * 6, [0, 0, 0, 0, 0, 1]])
def test_too_few_rows_of_a_class_are_refused(labels):
    X = np.random.default_rng(0).normal(size=(6, 4))
    with pytest.raises(ValueError, match="at least 2 rows of each of two classes"):
        StackedLogistic().fit(X, np.array(labels))


def test_few_rows_use_fewer_folds():
    X, y, blocks = _data(n=6)
    stack = StackedLogistic(blocks=blocks).fit(X, y)  # 3 per class: 3 folds, not 5
    assert np.isfinite(stack.decision_function(X)).all()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
def test_passes_scikit_learn_check_estimator():
    """Every applicable scikit-learn estimator check passes (pandas and array-API
    checks skip themselves where those libraries are absent)."""
    check_estimator(ffeat.StackedLogistic(n_folds=2))  # two folds: the same code, faster


def test_more_than_two_classes_are_refused_as_binary_only():
    X, _, _ = _data()
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        StackedLogistic().fit(X, np.arange(len(X)) % 3)


def test_string_labels_keep_their_order_and_the_log_odds_of_the_second():
    X, y, blocks = _data()
    named = StackedLogistic(blocks=blocks).fit(X, np.array(["fake", "real"])[1 - y])
    plain = StackedLogistic(blocks=blocks).fit(X, y)
    assert named.classes_.tolist() == ["fake", "real"]
    assert np.corrcoef(named.decision_function(X), plain.decision_function(X))[0, 1] < -0.99
    assert (named.predict(X) == np.where(plain.predict(X) == 1, "fake", "real")).mean() > 0.95


@pytest.mark.parametrize("param,value", [("C", -1), ("C", 0), ("n_folds", 1),
                                         ("n_folds", "5")])
def test_invalid_parameters_are_named_at_fit(param, value):
    X, y, _ = _data(n=12)
    with pytest.raises(InvalidParameterError,
                       match=f"'{param}' parameter of StackedLogistic"):
        StackedLogistic(**{param: value}).fit(X, y)


def test_unfitted_stack_raises_not_fitted():
    with pytest.raises(NotFittedError):
        StackedLogistic().predict(np.zeros((2, 3)))


def _copies(n_images=40, copies=3, seed=0):
    """Pure-noise rows, each image repeated ``copies`` times (as augmented copies would
    be, here unchanged): nothing to learn but the copies themselves."""
    rng = np.random.default_rng(seed)
    X = np.tile(rng.normal(size=(n_images, 30)), (copies, 1))
    y = np.tile(np.arange(n_images) % 2, copies)
    return X, y, np.tile(np.arange(n_images), copies)


def test_grouped_folds_keep_a_group_in_one_fold_and_stratify():
    X, y, groups = _copies()
    folds = _stacking.grouped_folds(y, groups, 5, 0)
    assert len(folds) == 5
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
        assert y[test].mean() == 0.5
    assert sorted(np.concatenate([t for _, t in folds])) == list(range(len(y)))


def test_grouped_folds_of_single_rows_are_stratified_kfold():
    from sklearn.model_selection import StratifiedKFold

    X, y, _ = _data()
    ours = _stacking.grouped_folds(y, np.arange(len(y)), 5, 7)
    theirs = StratifiedKFold(5, shuffle=True, random_state=7).split(X, y)
    for (a, b), (c, d) in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_grouped_folds_depend_on_the_rows_not_on_the_group_names():
    """Groups named by path (the protocol's) or by index (the Detector's) split the same
    rows into the same folds: groups are taken in the order they first appear."""
    X, y, groups = _copies(n_images=30)
    names = np.array([f"z/{(7 * g) % 30:02d}.png" for g in groups])  # sorts in another order
    for (a, b), (c, d) in zip(_stacking.grouped_folds(y, groups, 5, 3),
                              _stacking.grouped_folds(y, names, 5, 3), strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_grouped_folds_refuse_a_class_of_one_group():
    y, groups = np.array([0, 0, 0, 1, 1, 1]), np.array([0, 0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match=r"at least 2 images of each class .* got 1 and 2"):
        _stacking.grouped_folds(y, groups, 5, 0)


def test_out_of_fold_log_odds_do_not_leak_across_copies():
    """Copies of one image in different folds let a model 'predict' noise: with the groups
    its out-of-fold scores are chance, as they should be."""
    X, y, groups = _copies()
    leaky = StackedLogistic(C=100.0).fit(X, y)
    honest = StackedLogistic(C=100.0).fit(X, y, groups=groups)
    assert roc_auc_score(y, leaky.oof_log_odds_) > 0.9
    assert roc_auc_score(y, honest.oof_log_odds_) < 0.7
    # the combiner learnt to trust the block's leaked scores, and not the honest ones
    assert leaky.combiner_.coef_[0, 0] > 5 * abs(honest.combiner_.coef_[0, 0])


def test_out_of_fold_log_odds_are_the_combiner_cross_validated():
    X, y, blocks = _data()
    stack = StackedLogistic(blocks=blocks).fit(X, y)
    assert stack.oof_log_odds_.shape == (len(y),)
    in_sample = roc_auc_score(y, stack.decision_function(X))
    held_out = roc_auc_score(y, stack.oof_log_odds_)
    assert 0.8 < held_out <= in_sample
    # as log-odds of the same model: of the same scale, not a rank transform
    assert np.corrcoef(stack.oof_log_odds_, stack.decision_function(X))[0, 1] > 0.9


def test_groups_of_another_length_are_refused():
    X, y, _ = _data()
    with pytest.raises(ValueError, match=r"groups has shape \(5,\); expected one group per "
                                         r"row, \(120,\)"):
        StackedLogistic().fit(X, y, groups=np.arange(5))
