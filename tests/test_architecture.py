"""The two layers stay apart: the library (nn, backend, losses, penalties, optim, gradcheck,
models, random) imports nothing of the application built on it (data, training, evaluation,
plots, files, cli)."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "pygan"
LIBRARY = ["nn", "backend", "losses", "penalties", "optim", "gradcheck", "models", "random"]
APPLICATION = ["data", "training", "evaluation", "plots", "files", "cli", "__main__"]


def _files(name):
    p = PKG / name
    return sorted(p.rglob("*.py")) if p.is_dir() else [PKG / f"{name}.py"]


def _imported(path: pathlib.Path) -> set:
    """Absolute names of the pygan modules a file imports (relative imports resolved)."""
    rel = path.relative_to(ROOT).with_suffix("")
    here = list(rel.parts[:-1])          # the package a relative import starts from
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("pygan")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                out.add(mod)
                out |= {f"{mod}.{a.name}" for a in node.names}
            elif node.module and node.module.startswith("pygan"):
                out.add(node.module)
                out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _application_names(names):
    return sorted(n for n in names for app in APPLICATION
                  if n == f"pygan.{app}" or n.startswith(f"pygan.{app}."))


def test_every_module_is_in_one_layer():
    top = {p.stem if p.is_file() else p.name for p in PKG.iterdir()
           if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert top - {"__init__"} == set(LIBRARY) | set(APPLICATION), "a new top-level module: put it in a layer"


def test_the_library_imports_nothing_of_the_application():
    bad = []
    for name in LIBRARY:
        for f in _files(name):
            hits = _application_names(_imported(f))
            if hits:
                bad.append(f"{f.relative_to(ROOT)}: {', '.join(hits)}")
    assert not bad, "library modules importing the application:\n" + "\n".join(bad)


def test_importing_the_library_loads_no_application_module():
    code = ("import sys, pygan, pygan.models, pygan.gradcheck.suite;"
            "print(' '.join(m for m in sys.modules if m.startswith('pygan.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert not _application_names(out.split()), out


def test_the_check_sees_a_planted_import(tmp_path):
    f = PKG / "nn" / "_planted_for_test.py"
    f.write_text("from ..training import config\n")
    try:
        assert _application_names(_imported(f)) == ["pygan.training", "pygan.training.config"]
    finally:
        f.unlink()
