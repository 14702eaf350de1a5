"""skforget.verify: forget-vs-refit reports and membership-inference evaluation."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier
from sklearn.naive_bayes import GaussianNB as SklearnGaussianNB

from skforget.ensemble import DaREForestClassifier
from skforget.linear_model import Ridge, RidgeClassifier
from skforget.naive_bayes import GaussianNB
from skforget.verify import (
    compare_to_refit,
    empirical_epsilon,
    membership_inference,
    per_example_loss,
)

CANCER = load_breast_cancer(return_X_y=True)
DIABETES = load_diabetes(return_X_y=True)


def _noisy(n=600, d=5, seed=0):
    """Labels that are half noise: a deep tree memorises its training rows."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + 1.5 * rng.normal(size=n) > 0).astype(int)
    return X, y


# ------------------------------------------------------------ compare_to_refit
@pytest.mark.parametrize("est, data", [
    (GaussianNB(), CANCER),
    (RidgeClassifier(alpha=1.0), CANCER),
    (Ridge(alpha=0.1), DIABETES),
])
def test_exact_estimator_agrees_with_refit(est, data):
    X, y = data
    model = est.fit(X, y)
    report = compare_to_refit(model, X, y, np.arange(0, 120, 3))
    assert report.guarantee == "exact"
    assert report.agreement == 1.0
    assert report.max_output_diff < 1e-9
    assert report.param_distance < 1e-9
    assert report.matches_refit
    assert report.n_forgotten == 40 and report.n_samples == len(y) and report.n_eval == len(y)
    assert report.forget_time > 0 and report.refit_time > 0
    assert model.n_forgotten_ == 0  # the caller's model is untouched
    d = report.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert "matches refit       yes" in str(report)


def test_unfitted_estimator_is_fitted_first():
    X, y = CANCER
    est = GaussianNB()
    report = compare_to_refit(est, X, y, [1, 2, 3])
    assert report.matches_refit and report.agreement == 1.0
    assert not hasattr(est, "classes_")


def test_model_that_did_not_forget_is_flagged():
    X, y = CANCER
    forget = np.arange(0, 200, 2)
    report = compare_to_refit(SklearnGaussianNB().fit(X, y), X, y, forget)
    assert report.guarantee == "none"
    assert report.forget_time is None
    assert report.max_output_diff > 1e-3
    assert report.param_distance > 1e-3
    assert not report.matches_refit
    text = str(report)
    assert "matches refit       NO" in text and "cannot forget" in text


def test_randomness_off_dare_equals_refit():
    X, y = _noisy(300, 4)
    X = np.round(X, 1)  # few distinct values: k covers them all
    est = DaREForestClassifier(n_estimators=3, max_depth=4, topd=0, max_features=None,
                               k=1000, random_state=0)
    report = compare_to_refit(est.fit(X, y), X, y, np.arange(30), n_seeds=1)
    assert report.n_seeds == 1
    assert report.max_output_diff == 0.0 and report.agreement == 1.0
    assert report.matches_refit


def test_randomised_estimator_compared_over_seeds():
    X, y = _noisy(400, 5)
    est = DaREForestClassifier(n_estimators=5, max_depth=5, random_state=0)
    report = compare_to_refit(est, X, y, np.arange(40), n_seeds=4)
    assert report.n_seeds == 4
    assert report.param_distance is None
    assert 0 < report.tv_distance <= 1.5 * report.baseline_tv
    assert 0 < report.hellinger_distance and 0 < report.baseline_hellinger
    assert report.matches_refit
    assert "two refit sets" in str(report)


class _ForestThatKeepsRows(DaREForestClassifier):
    """Claims to forget, does nothing: what the seed comparison must catch."""

    def partial_forget(self, X_idx, *, X=None):
        return self


def test_randomised_model_that_did_not_forget_is_flagged():
    X, y = _noisy(400, 5)
    est = _ForestThatKeepsRows(n_estimators=5, max_depth=10, random_state=0)
    report = compare_to_refit(est, X, y, np.arange(40), n_seeds=4)
    # over all rows the kept rows hide in seed noise; on the forgotten rows they show
    assert report.tv_forgotten > 1.5 * report.baseline_tv_forgotten
    assert not report.matches_refit
    honest = compare_to_refit(DaREForestClassifier(n_estimators=5, max_depth=10,
                                                   random_state=0), X, y, np.arange(40),
                              n_seeds=4)
    assert honest.tv_forgotten <= 1.5 * honest.baseline_tv_forgotten
    assert honest.matches_refit


@pytest.mark.parametrize("forget, error, match", [
    ([600], ValueError, "outside"),
    ([], ValueError, "no rows"),
    ([0.5], TypeError, "integer"),
    (np.ones(569, dtype=bool), ValueError, "every row"),
    (np.ones(5, dtype=bool), ValueError, "shape"),
])
def test_bad_requests(forget, error, match):
    X, y = CANCER
    with pytest.raises(error, match=match):
        compare_to_refit(GaussianNB().fit(X, y), X, y, forget)


def test_model_fitted_on_other_rows_is_refused():
    X, y = CANCER
    with pytest.raises(ValueError, match="exactly"):
        compare_to_refit(GaussianNB().fit(X[:100], y[:100]), X, y, [1])
    with pytest.raises(ValueError, match="exactly"):
        compare_to_refit(GaussianNB().fit(X, y).partial_forget([0]), X, y, [1])


@settings(max_examples=15, deadline=None)
@given(st.sets(st.integers(0, 440), min_size=1, max_size=60))
def test_any_forget_set_matches_refit(rows):
    X, y = DIABETES
    report = compare_to_refit(Ridge(alpha=1.0).fit(X, y), X, y, sorted(rows))
    assert report.matches_refit and report.max_output_diff < 1e-8


# ------------------------------------------------------------ empirical epsilon
def test_epsilon_hand_computed():
    fpr = [0.0, 0.1, 0.3, 1.0]
    fnr = [1.0, 0.4, 0.2, 0.0]
    # threshold 2: log(0.85 / 0.4) = 0.7538, log(0.55 / 0.1) = 1.7047
    # threshold 3: log(0.65 / 0.2) = 1.1787, log(0.75 / 0.3) = 0.9163
    # thresholds 1 and 4 have one rate at zero: skipped
    assert empirical_epsilon(fpr, fnr, delta=0.05) == pytest.approx(math.log(5.5), abs=1e-12)


def test_epsilon_edge_cases():
    assert empirical_epsilon([0.0, 0.5], [0.0, 0.5]) == math.inf  # perfect attack
    assert empirical_epsilon([0.5], [0.5]) == 0.0  # log(0.49 / 0.5) < 0: clipped
    assert empirical_epsilon([0.0, 1.0], [1.0, 0.0]) == 0.0  # nothing defined
    assert empirical_epsilon([0.6], [0.6], delta=0.0) == 0.0  # log of a negative: skipped
    with pytest.raises(ValueError, match="differ"):
        empirical_epsilon([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="delta"):
        empirical_epsilon([0.1], [0.1], delta=1.0)


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=20),
       st.floats(0, 0.5))
def test_epsilon_symmetric_and_non_negative(pairs, delta):
    fpr, fnr = zip(*pairs)
    eps = empirical_epsilon(fpr, fnr, delta)
    assert eps >= 0.0
    assert eps == empirical_epsilon(fnr, fpr, delta)


# ------------------------------------------------------------ per-example loss
def test_per_example_loss_values():
    X, y = CANCER
    model = GaussianNB().fit(X, y)
    proba = model.predict_proba(X[:5])
    expected = -np.log(np.clip(proba[np.arange(5), y[:5]], 1e-12, 1))
    np.testing.assert_allclose(per_example_loss(model, X[:5], y[:5]), expected)
    ridge = RidgeClassifier().fit(X, y)
    margin = ridge.decision_function(X[:5]) * np.where(y[:5] == 1, 1, -1)
    np.testing.assert_allclose(per_example_loss(ridge, X[:5], y[:5]),
                               np.log1p(np.exp(-margin)))
    Xd, yd = DIABETES
    reg = Ridge().fit(Xd, yd)
    np.testing.assert_allclose(per_example_loss(reg, Xd[:5], yd[:5]),
                               (reg.predict(Xd[:5]) - yd[:5]) ** 2)


# --------------------------------------------------------- membership inference
@pytest.mark.parametrize("attack", ["loss", "shadow"])
def test_attack_sees_members_of_an_overfit_model_not_refit_rows(attack):
    X, y = _noisy()
    forgotten, retained, unseen = np.arange(100), np.arange(100, 300), np.arange(300, 600)
    # a forest of fully grown trees: members sit at p ~ 1, without the ties of one tree
    tree = RandomForestClassifier(n_estimators=20, random_state=0)
    refit = clone(tree).fit(X[retained], y[retained])
    report = membership_inference(refit, X, y, forgotten=forgotten, retained=retained,
                                  unseen=unseen, attack=attack, estimator=tree,
                                  n_shadow=4, random_state=0)
    assert report.results["retained"].auc > 0.75
    assert abs(report.results["forgotten"].auc - 0.5) < 0.1
    assert report.results["forgotten"].epsilon < 1.0
    assert report.results["retained"].epsilon > 2.0
    # the same tree trained on the forgotten rows too: they show as members
    kept_all = clone(tree).fit(X[:300], y[:300])
    leak = membership_inference(kept_all, X, y, forgotten=forgotten, unseen=unseen,
                                attack=attack, estimator=tree, n_shadow=4, random_state=0)
    assert leak.results["forgotten"].auc > 0.7
    assert leak.results["forgotten"].epsilon > 1.5
    assert leak.results["forgotten"].tpr_at_fpr[0.01] > 0.03
    assert set(leak.results) == {"forgotten"}
    assert leak.n_shadow == (4 if attack == "shadow" else 0)
    d = report.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert "epsilon" in str(report)


def test_forgotten_rows_of_dare_look_unseen():
    X, y = _noisy()
    model = DaREForestClassifier(n_estimators=10, max_depth=20, random_state=0)
    model.fit(X[:400], y[:400]).partial_forget(np.arange(150))
    report = membership_inference(model, X, y, forgotten=np.arange(150),
                                  retained=np.arange(150, 400), unseen=np.arange(400, 600))
    assert report.results["retained"].auc > 0.8
    assert abs(report.results["forgotten"].auc - 0.5) < 0.1


def test_membership_inference_bad_input():
    X, y = _noisy(100)
    model = GaussianNB().fit(X, y)
    with pytest.raises(ValueError, match="share"):
        membership_inference(model, X, y, forgotten=[1, 2], unseen=[2, 3])
    with pytest.raises(ValueError, match="attack"):
        membership_inference(model, X, y, forgotten=[1], unseen=[2], attack="lira")
    with pytest.raises(ValueError, match="n_shadow"):
        membership_inference(model, X, y, forgotten=[1], unseen=[2], attack="shadow",
                             n_shadow=3)
    with pytest.raises(ValueError, match="outside"):
        membership_inference(model, X, y, forgotten=[100], unseen=[2])


def test_plot_attack_roc():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from skforget.verify import plot_attack_roc

    X, y = _noisy(200)
    model = GaussianNB().fit(X[:100], y[:100])
    report = membership_inference(model, X, y, forgotten=[0], retained=range(1, 100),
                                  unseen=range(100, 200))
    ax = plot_attack_roc(report, labels=["NB"])
    assert len(ax.get_lines()) == 3  # forgotten, retained, chance
    assert ax.get_legend_handles_labels()[1][0].startswith("NB, forgotten")
    with pytest.raises(ValueError, match="labels"):
        plot_attack_roc(report, labels=["a", "b"])


# --------------------------------------------------------------------- the CLI
def _write_csv(path, X, y, header=None):
    lines = [] if header is None else [",".join(header)]
    lines += [", ".join([*(repr(float(v)) for v in row), str(label)])
              for row, label in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")


def test_cli_verify_prints_report(tmp_path, capsys):
    pytest.importorskip("skops")
    from skforget.__main__ import main
    from skforget.io import dump

    X, y = CANCER
    labels = np.where(y == 1, "benign", "malignant")
    data = tmp_path / "data.csv"
    _write_csv(data, X, labels)
    model = tmp_path / "model.skops"
    dump({"model": GaussianNB().fit(X, labels)}, model)
    assert main(["verify", str(model), str(data), "--forget", "0-9,20,@" + str(
        _rows_file(tmp_path, [30, 31]))]) == 0
    out = capsys.readouterr().out
    assert "GaussianNB: forget 13 of 569 rows" in out and "matches refit       yes" in out
    assert main(["verify", str(model), str(data), "--forget", "5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["agreement"] == 1.0 and report["n_forgotten"] == 1


def _rows_file(tmp_path, rows):
    path = tmp_path / "rows.txt"
    path.write_text("\n".join(map(str, rows)))
    return path


def test_cli_verify_flags_a_model_that_cannot_forget(tmp_path, capsys):
    pytest.importorskip("skops")
    from skforget.__main__ import main
    from skforget.io import dump

    X, y = DIABETES
    data = tmp_path / "data.csv"
    _write_csv(data, X, y, header=[f"x{i}" for i in range(X.shape[1])] + ["target"])
    from sklearn.linear_model import Ridge as SklearnRidge

    model = tmp_path / "model.joblib"
    dump(SklearnRidge().fit(X, y), model, format="joblib")
    code = main(["verify", str(model), str(data), "--forget", "0-49", "--header",
                 "--label", "target", "--format", "joblib"])
    assert code == 1
    assert "matches refit       NO" in capsys.readouterr().out


@pytest.mark.parametrize("forget, match", [("x", "Bad row"), ("5-2", "Bad row"),
                                           ("900", "outside")])
def test_cli_verify_bad_rows(tmp_path, capsys, forget, match):
    pytest.importorskip("skops")
    from skforget.__main__ import main
    from skforget.io import dump

    X, y = DIABETES
    data = tmp_path / "data.csv"
    _write_csv(data, X, y)
    dump(Ridge().fit(X, y), tmp_path / "m.skops")
    with pytest.raises(SystemExit):
        main(["verify", str(tmp_path / "m.skops"), str(data), "--forget", forget])
    assert match in capsys.readouterr().err
