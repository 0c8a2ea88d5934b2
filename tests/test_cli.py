"""The ``pygan`` command (train / sample / eval / presets) and the configs behind it."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from pygan import cli
from pygan.training import config, presets
from pygan.training.config import Config, ConfigError


# --- configs -------------------------------------------------------------------------------------

def test_every_preset_is_a_valid_config():
    names = presets.presets()
    for needed in ("ring-8", "grid-25", "dcgan-digits", "cgan-digits", "dcgan-mnist", "wgan-ring-8",
                   "wgan-gp-ring-8", "wgan-gp-0.1-ring-8", "r1-ring-8", "sn-hinge-ring-8", "lipschitz-ring-8",
                   "wgan-gp-grid-25", "wgan-grid-25"):
        assert needed in names
    for n in names:
        cfg = presets.preset(n)
        config.validate(cfg)
        assert cfg.name == n


def test_presets_carry_the_theory_settings():
    w = presets.preset("wgan-ring-8")
    assert (w.loss, w.clip, w.n_critic, w.optim_d.name, w.optim_d.lr) == ("wasserstein", 0.01, 5, "rmsprop", 5e-5)
    gp = presets.preset("wgan-gp-ring-8")
    assert (gp.penalty, gp.penalty_weight, gp.n_critic, gp.optim_d.lr, gp.optim_d.betas) == \
        ("gp", 10.0, 5, 1e-4, (0.0, 0.9))
    assert presets.preset("wgan-gp-0.1-ring-8").penalty_weight == 0.1
    assert (presets.preset("r1-ring-8").penalty, presets.preset("r1-ring-8").penalty_weight) == ("r1", 10.0)
    sn = presets.preset("sn-hinge-ring-8")
    assert sn.loss == "hinge" and sn.model_args == {"spectral_norm": True}
    assert presets.preset("grid-25").data_scale == 4.0


def test_presets_are_independent_copies():
    a = presets.preset("ring-8")
    a.model_args["width"] = 3
    a.optim_g.lr = 1.0
    b = presets.preset("ring-8")
    assert b.model_args == {} and b.optim_g.lr == 2e-4


def test_toml_round_trip_preserves_every_field():
    cfg = config.replace(presets.preset("wgan-gp-ring-8"), {
        "model_args.width": 64, "loss": "least_squares", "loss_args.a": -1.0, "loss_args.c": 0.0,
        "optim_g.eps": 1e-7, "data_folder": 'a "quoted" path\\x', "name": "ünïcode"})
    back = config.loads(config.to_toml(cfg))
    assert back == cfg


def test_toml_file_with_preset_and_tables(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('preset = "ring-8"\nloss = "wasserstein"\npenalty = "gp"\npenalty_weight = 0.1\n'
                 'n_critic = 5\n[optim_d]\nlr = 1e-4\nbetas = [0, 0.9]\n[model_args]\nwidth = 64\n')
    cfg = config.load(p)
    assert cfg.name == "ring-8" and cfg.loss == "wasserstein" and cfg.penalty_weight == 0.1
    assert cfg.optim_d.lr == 1e-4 and cfg.optim_d.betas == (0.0, 0.9) and cfg.optim_g.lr == 2e-4
    assert cfg.model_args == {"width": 64}


def test_unknown_top_level_key_is_named_with_the_valid_ones():
    with pytest.raises(ConfigError) as e:
        config.loads('lerning_rate = 0.1\n', "my.toml")
    msg = str(e.value)
    assert "'lerning_rate'" in msg and "my.toml" in msg
    for valid in ("batch_size", "loss", "n_critic", "optim_d", "steps"):
        assert valid in msg


def test_unknown_optimizer_key_is_named_with_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown key 'beta1' in c.toml \[optim_g\]; valid keys: alpha, betas"):
        config.loads('[optim_g]\nbeta1 = 0.5\n', "c.toml")


def test_wrong_types_and_values_are_named():
    with pytest.raises(ConfigError, match="steps must be an integer"):
        config.loads('steps = "many"\n')
    with pytest.raises(ConfigError, match="unknown loss 'wgan'"):
        config.loads('loss = "wgan"\n')
    with pytest.raises(ConfigError, match="unknown penalty"):
        config.loads('penalty = "gradient"\n')
    with pytest.raises(ConfigError, match="n_critic must be ≥ 1"):
        config.loads('n_critic = 0\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.loads('steps = = 3\n')
    with pytest.raises(ConfigError, match="loss_args"):
        config.loads('loss = "hinge"\n[loss_args]\na = 1\n')
    with pytest.raises(ConfigError, match="unknown preset 'ring-9'"):
        config.loads('preset = "ring-9"\n')


def test_dotted_overrides_parse_literals():
    cfg = config.replace(Config(), {"optim_d.betas": "[0, 0.9]", "optim.lr": "1e-4", "steps": "7",
                                    "model_args.spectral_norm": "true", "clip": 0.01})
    assert cfg.optim_d.betas == (0.0, 0.9) and cfg.optim_g.lr == cfg.optim_d.lr == 1e-4
    assert cfg.steps == 7 and cfg.model_args == {"spectral_norm": True} and cfg.clip == 0.01
    with pytest.raises(ConfigError, match="unknown key 'stepz'"):
        config.replace(Config(), {"stepz": 1})


# --- the command ----------------------------------------------------------------------------------

TINY = ["--steps", "6", "--batch", "32", "--set", "model_args.width=16", "--set", "model_args.depth=2",
        "--eval-every", "3", "--sample-every", "6", "--checkpoint-every", "3", "--no-progress"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cli") / "run")
    assert cli.main(["train", "ring-8", "--out", out, *TINY]) == 0
    return out


def test_train_writes_a_run_folder(run_dir):
    files = set(os.listdir(run_dir))
    assert {"config.toml", "metrics.jsonl", "checkpoint.npz", "samples.png", "losses.png"} <= files
    cfg = config.load(os.path.join(run_dir, "config.toml"))
    assert cfg.steps == 6 and cfg.batch_size == 32 and cfg.model_args == {"width": 16, "depth": 2}


def test_sample_writes_raw_points_in_data_coordinates(run_dir, tmp_path):
    out = str(tmp_path / "x.npy")
    assert cli.main(["sample", run_dir, "--n", "50", "--out", out]) == 0
    x = np.load(out)
    assert x.shape == (50, 2) and x.dtype == np.float32 and np.isfinite(x).all()


def test_sample_png_and_interpolation(run_dir, tmp_path):
    assert cli.main(["sample", run_dir, "--n", "100", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 1000
    out = str(tmp_path / "i.npy")
    assert cli.main(["sample", run_dir, "--interpolate", "--rows", "3", "--steps", "5", "--out", out]) == 0
    paths = np.load(out)
    assert paths.shape == (3, 5, 2)


def test_sample_rejects_label_for_unconditional_and_bad_extension(run_dir, tmp_path, capsys):
    assert cli.main(["sample", run_dir, "--label", "3", "--out", str(tmp_path / "a.png")]) == 2
    assert "unconditional" in capsys.readouterr().err
    assert cli.main(["sample", run_dir, "--out", str(tmp_path / "a.jpg")]) == 2
    assert ".png" in capsys.readouterr().err


def test_eval_prints_mode_figures(run_dir, capsys):
    assert cli.main(["eval", run_dir, "--n", "500"]) == 0
    out = capsys.readouterr().out
    assert "modes" in out and "high-quality" in out and "KL" in out and "step 6" in out
    assert cli.main(["eval", run_dir, "--n", "500", "--json"]) == 0
    q = json.loads(capsys.readouterr().out)
    assert q["step"] == 6 and q["total_modes"] == 8 and 0 <= q["hq_percent"] <= 100


def test_resume_refuses_changed_settings(run_dir, capsys):
    assert cli.main(["train", "--resume", run_dir, "--lr", "1"]) == 2
    assert "--lr" in capsys.readouterr().err


def test_existing_run_is_not_overwritten(run_dir, capsys):
    assert cli.main(["train", "ring-8", "--out", run_dir, *TINY]) == 2
    assert "--resume" in capsys.readouterr().err


def test_missing_mnist_says_where_to_put_the_files(tmp_path, capsys):
    rc = cli.main(["train", "dcgan-fashion", "--data-folder", str(tmp_path / "nowhere"), "--out",
                   str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "train-images-idx3-ubyte" in err and "download_mnist" in err and "nowhere" in err
    assert "Traceback" not in err


def test_unknown_preset_and_key_are_clear_errors(tmp_path, capsys):
    assert cli.main(["train", "ring-9"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'ring-9'" in err and "ring-8" in err
    assert cli.main(["train", "ring-8", "--set", "n_critics=3"]) == 2
    assert "unknown key 'n_critics'" in capsys.readouterr().err


def test_print_config_round_trips_and_default_is_digits(capsys):
    assert cli.main(["train", "--print-config"]) == 0
    cfg = config.loads(capsys.readouterr().out)
    assert cfg == presets.preset(presets.DEFAULT_PRESET) and cfg.data == "digits"
    assert cli.main(["train", "wgan-gp-ring-8", "--lr-d", "3e-4", "--n-critic", "3", "--print-config"]) == 0
    cfg = config.loads(capsys.readouterr().out)
    assert cfg.optim_d.lr == 3e-4 and cfg.optim_g.lr == 1e-4 and cfg.n_critic == 3 and cfg.penalty == "gp"


def test_config_file_as_argument(tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text('preset = "grid-25"\nsteps = 5\n')
    assert cli.main(["train", str(p), "--print-config"]) == 0
    cfg = config.loads(capsys.readouterr().out)
    assert cfg.data == "grid-25" and cfg.steps == 5


def test_presets_and_info_commands(capsys):
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "wgan-gp-ring-8" in out and "dcgan-digits" in out
    assert cli.main(["info"]) == 0
    assert "numpy" in capsys.readouterr().out


def test_gradcheck_command_still_runs(capsys):
    assert cli.main(["gradcheck", "--sections", "losses"]) == 0
    assert "0 failed" in capsys.readouterr().out


def test_no_ema_uses_the_raw_generator(tmp_path, capsys):
    out = str(tmp_path / "ema")
    assert cli.main(["train", "ring-8-ema", "--out", out, *TINY]) == 0
    a, b = str(tmp_path / "ema.npy"), str(tmp_path / "raw.npy")
    assert cli.main(["sample", out, "--n", "20", "--out", a]) == 0
    assert cli.main(["sample", out, "--n", "20", "--out", b, "--no-ema"]) == 0
    assert not np.array_equal(np.load(a), np.load(b))          # EMA of G ≠ G after a few steps
    capsys.readouterr()
    assert cli.main(["eval", out, "--json", "--n", "100", "--no-ema"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 6
