"""The derivations are part of the product: every docstring pointer into docs/gradients.md must
land on a heading, and every backward in pygan/nn must carry such a pointer."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _slug(heading: str) -> str:
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def _anchors(md: pathlib.Path) -> set:
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", md.read_text(), re.M)}


def test_every_pointer_into_gradients_md_lands_on_a_heading():
    anchors = _anchors(ROOT / "docs" / "gradients.md")
    missing = []
    for path in sorted((ROOT / "pygan").rglob("*.py")):
        for m in re.finditer(r"docs/gradients\.md#([\w-]+)", path.read_text()):
            if m.group(1) not in anchors:
                missing.append(f"{path.relative_to(ROOT)}: #{m.group(1)}")
    assert not missing, "pointers to missing sections of docs/gradients.md:\n" + "\n".join(missing)


def test_every_layer_file_points_to_its_derivation():
    for name in ("linear", "conv", "normalization", "activation", "dropout", "embedding", "shape", "spectral_norm", "skip", "upsample", "conditional_batchnorm", "pooling"):
        text = (ROOT / "pygan" / "nn" / f"{name}.py").read_text()
        assert "docs/gradients.md#" in text, f"pygan/nn/{name}.py has no pointer to its derivation"


# --- every link resolves ------------------------------------------------------------------------

_SKIP_DIRS = {".venv", ".git", "build", "runs", "node_modules"}


def _repo_files(*suffixes):
    for p in sorted(ROOT.rglob("*")):
        if p.suffix in suffixes and p.is_file() and not _SKIP_DIRS & set(p.relative_to(ROOT).parts):
            yield p


def _broken(target: str, base: pathlib.Path):
    """Why the repository-relative link ``target`` (path[#anchor]) from a file in ``base`` does not
    resolve, or None."""
    path, _, anchor = target.partition("#")
    dest = (base / path).resolve() if path else None
    if dest is not None and not dest.exists():
        return "no such file"
    if anchor and (dest is None or dest.suffix == ".md"):
        md = dest if dest is not None else None
        if md is not None and anchor not in _anchors(md):
            return f"no heading #{anchor}"
    return None


def test_every_link_in_the_markdown_files_resolves():
    bad = []
    for md in _repo_files(".md"):
        text = re.sub(r"```.*?```", "", md.read_text(), flags=re.S)
        for m in re.finditer(r"\]\(([^)\s]+)\)", text):
            target = m.group(1)
            if re.match(r"[a-z]+://|mailto:", target) or target.startswith("#"):
                if target.startswith("#") and target[1:] not in _anchors(md):
                    bad.append(f"{md.relative_to(ROOT)}: {target} (no such heading)")
                continue
            why = _broken(target, md.parent)
            if why:
                bad.append(f"{md.relative_to(ROOT)}: {target} ({why})")
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_every_document_named_in_the_code_exists():
    bad = []
    for f in _repo_files(".py", ".cu", ".h", ".cpp", ".sh"):
        for m in re.finditer(r"(?<![\w/.])((?:docs|benchmarks|examples|csrc)/[\w./-]*\.md)(#[\w-]+)?", f.read_text()):
            why = _broken(m.group(1) + (m.group(2) or ""), ROOT)
            if why:
                bad.append(f"{f.relative_to(ROOT)}: {m.group(0)} ({why})")
    assert not bad, "documents named in the code that do not exist:\n" + "\n".join(bad)


def test_the_repository_refers_to_nothing_outside_it():
    bad = []
    for f in _repo_files(".py", ".md", ".cu", ".h", ".cpp", ".sh", ".toml"):
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if re.search(r"\.\./shared|\bseed notes\b", line):
                bad.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()[:80]}")
    assert not bad, "references to material outside the repository:\n" + "\n".join(bad)
