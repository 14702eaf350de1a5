"""README promises: the quick start runs, and CI runs the README's commands."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

pytestmark = pytest.mark.skipif(not README.exists(), reason="needs the source checkout")


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def test_quick_start_runs():
    (code,) = _blocks("python")
    exec(compile(code, "README.md", "exec"), {})


def test_ci_runs_the_readme_commands():
    commands = [block.strip() for block in _blocks("bash")]
    assert commands == ["pip install . && python -m skforget demo",
                        "pip install '.[test]' && pytest"]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert command in ci, f".ci/run does not run {command!r}"
