"""The forgetting contract and scikit-learn's estimator checks, on every estimator."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skforget.cluster import KMeans
from skforget.ensemble import (
    DaREForestClassifier,
    HedgeCutClassifier,
    SISAClassifier,
    SISARegressor,
)
from skforget.linear_model import (
    LinearRegression,
    LogisticRegression,
    Ridge,
    RidgeClassifier,
)
from skforget.naive_bayes import (
    BernoulliNB,
    CategoricalNB,
    ComplementNB,
    GaussianNB,
    MultinomialNB,
)
from skforget.compose import ColumnTransformer
from skforget.pipeline import Pipeline, make_pipeline
from skforget.preprocessing import (
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    SimpleImputer,
    StandardScaler,
)
from skforget.utils.estimator_checks import yield_forget_checks

ESTIMATORS = [
    GaussianNB(),
    MultinomialNB(),
    ComplementNB(),
    BernoulliNB(),
    CategoricalNB(),
    LinearRegression(),
    Ridge(),
    RidgeClassifier(),
    RidgeClassifier(class_weight="balanced"),
    LogisticRegression(tol=1e-10, max_iter=1000),
    LogisticRegression(forget_mode="certified", random_state=0, sigma=10.0, epsilon=10.0),
    KMeans(n_clusters=3, random_state=0),
    KMeans(n_clusters=3, random_state=0, forget_algorithm="divide_conquer", n_leaves=4),
    # randomness switched off: forgetting must give the refit node for node
    DaREForestClassifier(n_estimators=3, max_features=None, k=10_000, random_state=0),
    # compared with its own draws re-scored on the remaining rows (its guarantee)
    HedgeCutClassifier(n_estimators=10, epsilon=0.05, random_state=0),
    StandardScaler(),
    StandardScaler(with_mean=False),
    MinMaxScaler(),
    MaxAbsScaler(),
    SimpleImputer(),
    SimpleImputer(strategy="median"),
    SimpleImputer(strategy="most_frequent"),
    SimpleImputer(strategy="constant", add_indicator=True),
    OneHotEncoder(),
    OneHotEncoder(drop="if_binary", min_frequency=3, handle_unknown="infrequent_if_exist"),
    KBinsDiscretizer(),
    KBinsDiscretizer(n_bins=3, encode="ordinal", strategy="uniform"),
    KBinsDiscretizer(n_bins=3, encode="onehot-dense", strategy="kmeans"),
    make_pipeline(StandardScaler(), Ridge()),
    make_pipeline(MinMaxScaler(), GaussianNB()),
    make_pipeline(MaxAbsScaler(), StandardScaler(), RidgeClassifier()),  # refits downstream
    SISAClassifier(GaussianNB(), n_shards=3, n_slices=2, random_state=0),
    SISAClassifier(n_shards=3, n_slices=2, aggregation="mean_proba", random_state=0),
    SISARegressor(n_shards=3, n_slices=2, random_state=0),
]

# Only the forgetting contract: scikit-learn runs no generic checks on its own
# ColumnTransformer either (they assume any number of columns).
FORGET_ONLY = [
    ColumnTransformer([("a", StandardScaler(), [0, 1]), ("b", MinMaxScaler(), [2, 3])]),
    make_pipeline(ColumnTransformer([("a", StandardScaler(), [0, 1]),
                                     ("b", MaxAbsScaler(), [2])], remainder="passthrough"),
                  Ridge()),
]

# Contract checks that cannot apply to an estimator, with the reason; its own
# test module covers the behaviour instead.
NOT_APPLICABLE = {
    ("Pipeline(MinMaxScaler,GaussianNB)", "check_rows_passed_by_caller"): (
        "MinMaxScaler keeps each feature's sorted values whatever the pipeline keeps "
        "(tests/test_pipeline.py covers lean pipelines)"
    ),
    ("Pipeline(MaxAbsScaler,StandardScaler,RidgeClassifier)",
     "check_rows_passed_by_caller"): (
        "a scaler's change forces a refit of the next steps, which needs the rows; "
        "a lean pipeline refuses it (tests/test_pipeline.py)"
    ),
    ("LogisticRegression", "check_rows_passed_by_caller"): (
        "exact mode re-solves on the remaining rows, so it refuses retain_rows=False; "
        "certified mode accepts it, but the check's 1e6 canary makes the removal bound "
        "exceed any budget (tests/test_logistic.py covers both)"
    ),
}


def _ids(est):
    if isinstance(est, Pipeline):
        return f"Pipeline({','.join(type(step).__name__ for _, step in est.steps)})"
    return type(est).__name__


def _contract_cases():
    for est in ESTIMATORS + FORGET_ONLY:
        for check in yield_forget_checks(est):
            reason = NOT_APPLICABLE.get((_ids(est), check.__name__))
            marks = [pytest.mark.skip(reason=reason)] if reason else []
            yield pytest.param(est, check, marks=marks)


@pytest.mark.parametrize(
    "estimator, check",
    list(_contract_cases()),
    ids=lambda v: v.__name__ if callable(v) and not hasattr(v, "fit") else _ids(v),
)
def test_forget_contract(estimator, check):
    check(estimator)


def _expected_failed_checks(estimator):
    failing = {}
    if isinstance(estimator, (Ridge, RidgeClassifier)):
        # scikit-learn marks the same check as expected to fail for its own Ridge
        failing["check_non_transformer_estimators_n_iter"] = (
            "direct solver: n_iter_ is None, as in scikit-learn's Ridge")
    if getattr(estimator, "forget_mode", None) == "certified":
        failing["check_class_weight_balanced_linear_classifier"] = (
            "class_weight='balanced' is refused in certified mode: every row's weight "
            "would change with each removal")
    if isinstance(estimator, SimpleImputer) and estimator.strategy == "constant":
        failing["check_dtype_object"] = (
            "strategy='constant' takes any object, as scikit-learn's SimpleImputer does "
            "(which fails this check too)")
    if isinstance(estimator, KBinsDiscretizer) and estimator.strategy == "kmeans":
        failing["check_sample_weight_equivalence_on_dense_data"] = (
            "1-D k-means from a fixed start is not weight/repetition equivalent; "
            "scikit-learn's KBinsDiscretizer fails this check too")
    if isinstance(estimator, SISAClassifier) and estimator.estimator is None:
        reason = ("the default SGDClassifier's steps are not weight/repetition "
                  "equivalent; scikit-learn's SGDClassifier fails this check too")
        failing["check_sample_weight_equivalence_on_dense_data"] = reason
        failing["check_sample_weight_equivalence_on_sparse_data"] = reason
    if isinstance(estimator, Pipeline):
        reason = "fitting fits the steps in place, as scikit-learn's own Pipeline does"
        failing["check_estimators_overwrite_params"] = reason
        failing["check_dont_overwrite_parameters"] = reason
    if getattr(estimator, "class_weight", None) == "balanced":
        reason = "balanced class weights count rows, so repeating a row is not a weight"
        failing["check_sample_weight_equivalence_on_dense_data"] = reason
        failing["check_sample_weight_equivalence_on_sparse_data"] = reason
    return failing


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
