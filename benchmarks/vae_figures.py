"""The VAE and CVAE figures of docs/img: a 2-D-latent VAE and CVAE trained on the digits by the
trainer behind ``pygan train`` (presets vae-digits and cvae-digits with latent_dim 2), then every
picture of :mod:`pygan.plots.vae` drawn from them on the 297 held-out digits.

    python benchmarks/vae_figures.py docs/img [STEPS]      # default 10,000 steps each (~1 min each)

Prints each model's held-out −ELBO, reconstruction and KL and the judge's Fréchet distance.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np

from pygan.plots import vae as figures
from pygan.training import Trainer, config, presets


def train(preset: str, steps: int, folder: str):
    cfg = config.replace(presets.preset(preset), {"model_args.latent_dim": 2, "steps": steps, "eval_every": 0,
                                                  "sample_every": 0, "checkpoint_every": 0,
                                                  "log_every": max(1, steps // 10)})
    t = Trainer.new(cfg, out=os.path.join(folder, preset), progress=False)
    t.run()
    return t


def main(folder="docs/img", steps=10000, seed=0):
    t0 = time.time()
    with tempfile.TemporaryDirectory() as runs:
        vae_t, cvae_t = train("vae-digits", steps, runs), train("cvae-digits", steps, runs)
    for t in (vae_t, cvae_t):
        q = t.task.evaluate(t.step)[1]
        print(f"{t.cfg.name} (latent 2): {q}")
    vae, cvae = vae_t.model, cvae_t.model
    xt, yt = vae_t.task.heldout
    rng = np.random.default_rng(seed + 2)
    p = lambda name: os.path.join(folder, name)          # noqa: E731
    drawn = [
        ("vae_reconstructions.png", lambda f: figures.reconstructions(vae, xt[:32], f)),
        ("vae_samples.png", lambda f: figures.prior_samples(vae, f, 100, np.random.default_rng(seed + 3))),
        ("vae_interpolations.png", lambda f: figures.interpolations(vae, xt[:8], xt[8:16], f)),
        ("vae_manifold.png", lambda f: figures.latent_manifold(vae, f, 15)),
        ("vae_latent_scatter.png", lambda f: figures.latent_scatter(vae, xt, yt, f)),
        ("vae_cvae_samples.png", lambda f: figures.prior_samples(cvae, f, 100, np.random.default_rng(seed + 3))),
        ("vae_cvae_class_by_style.png", lambda f: figures.class_by_style(cvae, f, n_styles=12, rng=rng)),
        ("vae_cvae_manifold.png", lambda f: figures.latent_manifold(cvae, f, 11, label=4,
                                                                  title="CVAE (z 2): decoded latent grid, label 4")),
        ("vae_cvae_latent_scatter.png", lambda f: figures.latent_scatter(cvae, xt, yt, f)),
    ]
    for name, draw in drawn:
        draw(p(name))
        print(p(name))
    print(f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/img", int(sys.argv[2]) if len(sys.argv) > 2 else 10000)
