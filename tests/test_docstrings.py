"""Every Examples section in the package's docstrings runs as a doctest."""

import doctest
import importlib
import pkgutil

import pytest

import skforget

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(skforget.__path__, "skforget.")
    if info.name != "skforget.__main__"
)


# Packages of optional extras; their modules' examples run where the extra is
# installed (.ci/run's extras step).
OPTIONAL = {"torch", "skorch"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name not in OPTIONAL:
            raise
        pytest.skip(f"{name} needs the optional package {exc.name}")
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.failed == 0


def test_every_public_estimator_has_a_runnable_example():
    from skforget import naive_bayes

    finder = doctest.DocTestFinder()
    for name in naive_bayes.__all__:
        tests = finder.find(getattr(naive_bayes, name), name)
        assert any(t.examples for t in tests), f"{name} has no Examples"
