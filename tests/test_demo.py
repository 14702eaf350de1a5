"""``python -m skforget demo`` runs and reports agreement with the refit."""

import pytest

from skforget.__main__ import main


def test_demo_agrees_with_refit(capsys):
    assert main(["demo", "--fraction", "0.2", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "OK: every model equals its refit" in out
    for name in ("GaussianNB", "MultinomialNB", "ComplementNB", "BernoulliNB",
                 "CategoricalNB", "LinearRegr.", "Ridge", "RidgeClassif."):
        assert name in out


def test_demo_fails_when_a_model_disagrees(monkeypatch, capsys):
    import skforget._demo as demo

    monkeypatch.setattr(demo, "TOLERANCE", -1.0)  # nothing can agree that well
    assert main(["demo"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_demo_rejects_bad_fraction():
    with pytest.raises(SystemExit):
        main(["demo", "--fraction", "1.5"])
