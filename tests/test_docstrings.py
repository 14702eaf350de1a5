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


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.failed == 0


def test_every_public_estimator_has_a_runnable_example():
    from skforget import naive_bayes

    finder = doctest.DocTestFinder()
    for name in naive_bayes.__all__:
        tests = finder.find(getattr(naive_bayes, name), name)
        assert any(t.examples for t in tests), f"{name} has no Examples"
