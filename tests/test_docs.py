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
    for name in ("linear", "conv", "normalization", "activation", "dropout", "embedding", "shape", "spectral_norm", "skip", "upsample"):
        text = (ROOT / "pygan" / "nn" / f"{name}.py").read_text()
        assert "docs/gradients.md#" in text, f"pygan/nn/{name}.py has no pointer to its derivation"
