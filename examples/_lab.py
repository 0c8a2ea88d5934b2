"""What the theory-lab scripts share: their command line (``--out``, ``--quick``, ``--seed``) and
how they save their figure."""
from __future__ import annotations

import argparse
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def parser(doc: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--out", default=OUT, help="folder for the figure (default: examples/out)")
    ap.add_argument("--quick", action="store_true", help="tiny settings (for the tests)")
    ap.add_argument("--seed", type=int, default=0)
    return ap


def save_figure(fig, out: str, name: str) -> str:
    """Write ``fig`` to ``out/name.png``, close it, say where; returns the path."""
    import matplotlib.pyplot as plt

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{name}.png")
    fig.savefig(path)
    plt.close(fig)
    print(f"figure: {path}")
    return path
