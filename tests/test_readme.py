"""The README's examples run as written, and its test command is what CI runs."""
import pathlib
import re

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_python_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "the README has no python example"
    ns = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), ns)
    assert np.isfinite(ns["G"].parameters()[0].data).all()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text().splitlines()
    i = readme.index("<!-- test-command -->")
    assert "pytest" in readme[i + 1]
    assert "test-command" in (ROOT / ".ci" / "run").read_text()
