"""The Sphinx documentation in ``docs/`` builds without a single warning."""

import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    if not (DOCS / "conf.py").is_file():
        pytest.skip(f"no documentation sources at {DOCS} (installed-package run)")
    cmd = [
        sys.executable, "-m", "sphinx",
        "-W", "--keep-going",  # warnings are errors; report all of them
        "-b", "html",
        "-d", str(tmp_path / "doctrees"),
        str(DOCS), str(tmp_path / "html"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        print(result.stdout)
        print(result.stderr, file=sys.stderr)
    assert result.returncode == 0, (
        f"sphinx-build failed (exit {result.returncode}):\n{result.stderr}"
    )
    assert (tmp_path / "html" / "index.html").is_file()
