"""``pygan train vae-digits`` and friends: the VAE trainer's run folder, exact resume, the NaN stop,
and the CLI's train / sample / eval / presets on VAE runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pygan.training import checkpoint as ckpt
from pygan import cli
from pygan.training import config, presets
from pygan.training.config import ConfigError
from pygan.training import TrainingDiverged
from pygan.training import Trainer as VAETrainer
from pygan.training.tasks import VAETask

pytest.importorskip("sklearn")          # the digits

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def no_plots(monkeypatch):
    """Skip the pictures and the judge where a test is about training."""
    monkeypatch.setattr(VAETrainer, "_figures", lambda self, final=False: None)
    monkeypatch.setattr(VAETask, "evaluate", lambda self, step: ({}, None))


def tiny(name="vae-digits", **over):
    """A small MLP (H = 32), 6 batches an epoch (batch 250 of the 1,500 training digits)."""
    cfg = config.replace(presets.preset(name), {
        "model_args.hidden": 32, "batch_size": 250, "steps": 10, "eval_every": 0, "sample_every": 0,
        "checkpoint_every": 0, "log_every": 1000})
    return config.replace(cfg, over)


def _state(t):
    out = {f"model.{k}": v for k, v in t.model.state_dict().items()}
    out.update({f"opt.{k}": np.asarray(v) for k, v in t.opt.state_dict().items()})
    return out


def _records(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


# --- training -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,over", [("vae-digits", {}), ("vae-digits", {"beta_warmup": 5, "beta": 0.5}),
                                       ("cvae-digits", {}), ("ae-digits", {})],
                         ids=["vae", "vae-warmup", "cvae", "ae"])
def test_vae_resume_is_bit_identical_to_one_run(tmp_path, no_plots, name, over):
    n = 4                                          # resumes mid-epoch; the second half crosses an epoch
    straight = VAETrainer.new(tiny(name, steps=2 * n, checkpoint_every=3, **over), out=str(tmp_path / "a"),
                              progress=False)
    straight.run()
    half = VAETrainer.new(tiny(name, steps=n, checkpoint_every=3, **over), out=str(tmp_path / "b"), progress=False)
    half.run()
    cont = VAETrainer.resume(str(tmp_path / "b"), steps=2 * n, progress=False)
    assert cont.step == n and cont.data.pos == 250 * n
    cont.run()
    a, b = _state(straight), _state(cont)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{k} differs")
    ra, rb = _records(tmp_path / "a"), _records(tmp_path / "b")
    assert [r["step"] for r in rb] == list(range(1, 2 * n + 1))
    for x, y in zip(ra, rb):
        x.pop("time"), y.pop("time"), x.pop("data", None), y.pop("data", None)
        if x["step"] == n:                  # the first half's last step logged its gradient norms
            y.pop("grad_norm")
        assert x == y
    assert set(ra[0]) == {"step", "loss", "recon", "kl", "elbo", "beta"}
    assert set(ra[-1]) == {"step", "loss", "recon", "kl", "elbo", "beta", "grad_norm"}
    if "beta_warmup" in over:
        assert [r["beta"] for r in ra[:6]] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.5]


def test_vae_step_trains_the_elbo(tmp_path, no_plots):
    t = VAETrainer.new(tiny(steps=60, batch_size=64), out=str(tmp_path / "r"), progress=False)
    t.run()
    r = t.records
    assert np.mean([x["loss"] for x in r[-10:]]) < np.mean([x["loss"] for x in r[:10]]) - 5
    for x in r:
        assert x["loss"] == pytest.approx(x["recon"] + x["beta"] * x["kl"]) and x["elbo"] == -(x["recon"] + x["kl"])


def test_nan_in_elbo_stops_naming_step_and_term_and_keeps_checkpoint(tmp_path, no_plots):
    t = VAETrainer.new(tiny(steps=10, checkpoint_every=2), out=str(tmp_path / "run"), progress=False)
    step_fn = t.train_step

    def poisoned():
        if t.step == 4:                             # after step 4 the decoder's last bias becomes NaN
            t.model.decoder[4].bias.data[...] = np.nan
        return step_fn()

    t.train_step = poisoned
    with pytest.raises(TrainingDiverged, match=r"^step 5: recon is nan") as e:
        t.run()
    assert e.value.step == 5 and e.value.term == "recon" and e.value.checkpoint[1] == 4
    ck = ckpt.load(tmp_path / "run")
    assert ck.step == 4 and all(np.isfinite(v).all() for v in ck.modules["model"].values())
    assert _records(tmp_path / "run")[-1] == {"step": 5, "error": str(e.value)}


def test_data_and_model_mismatch_and_bad_keys_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"takes images of shape \(1, 28, 28\)"):
        VAETrainer(tiny(model="vae-28"), str(tmp_path))
    with pytest.raises(ConfigError, match="unknown key 'lerning_rate'"):
        config.replace(tiny(), {"lerning_rate": 1})
    with pytest.raises(ConfigError, match="beta must be a number ≥ 0"):
        config.validate(tiny(beta=-1.0))


def test_vae_config_toml_round_trip():
    cfg = tiny("cvae-digits", **{"model_args.latent_dim": 2, "optim.lr": 3e-4, "beta_warmup": 7})
    assert config.loads(config.to_toml(cfg)) == cfg


# --- the command ----------------------------------------------------------------------------------

TINY = ["--steps", "6", "--batch", "32", "--set", "model_args.hidden=16", "--eval-every", "3",
        "--sample-every", "6", "--checkpoint-every", "3", "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("vae-cli")
    out = {k: str(base / k) for k in ("vae", "cvae")}
    assert cli.main(["train", "vae-digits", "--out", out["vae"], "--beta", "0.5", "--lr", "2e-3", *TINY]) == 0
    assert cli.main(["train", "cvae-digits", "--out", out["cvae"], *TINY]) == 0
    return out


def test_cli_train_writes_a_vae_run_folder(runs):
    run = runs["vae"]
    files = set(os.listdir(run))
    assert {"config.toml", "metrics.jsonl", "checkpoint.npz", "samples.png", "reconstructions.png",
            "losses.png", "interpolation.png", "grad_norms.png"} <= files
    assert {"step_000006.png", "recon_000006.png"} <= set(os.listdir(os.path.join(run, "samples")))
    cfg = config.loads(open(os.path.join(run, "config.toml")).read())
    assert (cfg.model, cfg.steps, cfg.batch_size, cfg.beta, cfg.optim.lr, cfg.model_args) == \
        ("vae-8", 6, 32, 0.5, 2e-3, {"hidden": 16})
    recs = _records(run)
    assert [r["step"] for r in recs] == list(range(1, 7))
    assert all(r["beta"] == 0.5 for r in recs)
    ev = [r["eval"] for r in recs if "eval" in r]
    assert len(ev) == 2 and {"test_neg_elbo", "test_recon", "test_kl"} <= set(ev[-1])
    assert ev[-1]["test_neg_elbo"] == pytest.approx(ev[-1]["test_recon"] + ev[-1]["test_kl"])


def test_cli_sample_and_eval_on_vae_runs(runs, tmp_path, capsys):
    out = str(tmp_path / "x.npy")
    assert cli.main(["sample", runs["vae"], "--n", "20", "--out", out]) == 0
    x = np.load(out)
    assert x.shape == (20, 1, 8, 8) and x.dtype == np.float32 and np.all(np.abs(x) <= 1)
    assert cli.main(["sample", runs["vae"], "--label", "3", "--out", str(tmp_path / "a.png")]) == 2
    assert "unconditional" in capsys.readouterr().err
    assert cli.main(["sample", runs["cvae"], "--label", "3", "--n", "10", "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert cli.main(["sample", runs["cvae"], "--interpolate", "--rows", "2", "--steps", "4",
                     "--out", str(tmp_path / "i.npy")]) == 0
    assert np.load(tmp_path / "i.npy").shape == (2, 4, 1, 8, 8)
    capsys.readouterr()
    assert cli.main(["eval", runs["cvae"], "--n", "200"]) == 0
    text = capsys.readouterr().out
    assert "step 6" in text and "test_neg_elbo" in text and "fid" in text and "cond_accuracy" in text
    assert cli.main(["eval", runs["vae"], "--n", "200", "--json"]) == 0
    q = json.loads(capsys.readouterr().out)
    assert q["step"] == 6 and q["test_neg_elbo"] > 0 and q["fid"] >= 0 and "real_vs_real_fid" in q


def test_cli_resume_continues_a_vae_run(runs, tmp_path, capsys):
    import shutil
    run = str(tmp_path / "copy")
    shutil.copytree(runs["vae"], run)
    assert cli.main(["train", "--resume", run, "--beta", "2"]) == 2
    assert "--beta" in capsys.readouterr().err
    assert cli.main(["train", "--resume", run, "--steps", "8", "--no-progress", "--sample-every", "0"]) == 0
    assert ckpt.load(run).step == 8 and [r["step"] for r in _records(run)] == list(range(1, 9))


def test_cli_vae_config_file_flags_and_presets(tmp_path, capsys):
    p = tmp_path / "v.toml"
    p.write_text('model = "cvae-8"\nsteps = 5\n[model_args]\nlatent_dim = 2\n')
    assert cli.main(["train", str(p), "--beta", "4", "--print-config"]) == 0
    cfg = config.loads(capsys.readouterr().out)
    assert (cfg.model, cfg.steps, cfg.beta, cfg.model_args) == ("cvae-8", 5, 4.0, {"latent_dim": 2})
    assert cli.main(["train", "vae-digits", "--loss", "hinge"]) == 2
    assert "--loss does not apply to a VAE" in capsys.readouterr().err
    assert cli.main(["train", "ring-8", "--beta", "2", "--print-config"]) == 2
    assert "--beta" in capsys.readouterr().err
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ("vae-digits", "cvae-digits", "ae-digits", "vae-mnist", "cvae-mnist", "dcgan-digits"):
        assert name in out


def test_missing_mnist_for_vae_is_a_clean_error(tmp_path):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "pygan", "train", "vae-mnist", "--data", "fashion", "--data-folder",
                        str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"), "--no-progress"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "train-images-idx3-ubyte" in p.stderr and "download_mnist" in p.stderr and "nowhere" in p.stderr
    assert "Traceback" not in p.stderr


def test_the_vae_figures_script_trains_through_the_engine_and_draws_every_figure(tmp_path, capsys):
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    try:
        import vae_figures
    finally:
        sys.path.pop(0)
    vae_figures.main(str(tmp_path / "img"), steps=20)
    drawn = sorted(os.listdir(tmp_path / "img"))
    assert len(drawn) == 9 and all(name.startswith("vae_") and name.endswith(".png") for name in drawn)
    assert "vae-digits (latent 2): step 20: test_neg_elbo" in capsys.readouterr().out
