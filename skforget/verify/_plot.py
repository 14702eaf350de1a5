"""ROC curves of membership-inference attacks (needs matplotlib: the ``plot`` extra)."""

__all__ = ["plot_attack_roc"]


def plot_attack_roc(*reports, ax=None, labels=None):
    """Plot the attack ROC curves of one or more membership reports, log-log.

    Parameters
    ----------
    *reports : MembershipReport
        Reports from :func:`~skforget.verify.membership_inference`; each
        group in each report (forgotten, retained) is one curve.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; default a new figure's.
    labels : list of str, default=None
        One prefix per report for the legend; default the estimator's name
        and the attack.

    Returns
    -------
    ax : matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.naive_bayes import GaussianNB
    >>> from skforget.verify import membership_inference, plot_attack_roc
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(300, 3)), rng.integers(0, 2, 300)
    >>> model = GaussianNB().fit(X[:200], y[:200]).partial_forget(range(100))
    >>> report = membership_inference(model, X, y, forgotten=range(100),
    ...                               retained=range(100, 200), unseen=range(200, 300))
    >>> ax = plot_attack_roc(report)  # doctest: +SKIP
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plot_attack_roc needs matplotlib: pip install 'skforget[plot]'."
        ) from exc
    if not reports:
        raise ValueError("Pass at least one MembershipReport.")
    if labels is not None and len(labels) != len(reports):
        raise ValueError(f"{len(labels)} labels for {len(reports)} reports.")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    for i, report in enumerate(reports):
        prefix = labels[i] if labels is not None else f"{report.estimator} ({report.attack})"
        for result in report.results.values():
            ax.plot(result.fpr, result.tpr,
                    label=f"{prefix}, {result.target}: AUC {result.auc:.3f}")
    lo = 1e-3
    ax.plot([lo, 1], [lo, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, 1)
    ax.set_ylim(lo, 1)
    ax.set_xlabel("false positive rate (never-seen rows called members)")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize="small", loc="lower right")
    return ax
