"""The trainer: the step against a hand-written loop, every loss and penalty, exact resume
(in process and after SIGKILL), NaN stops naming the step and term, metrics fields."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pygan.training import checkpoint as ckpt
from pygan import losses, penalties
from pygan.training import config, presets
from pygan.training.config import ConfigError
from pygan.training import Trainer, TrainingDiverged, resume, train
from pygan.training.tasks import GANTask

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def no_plots(monkeypatch):
    """Skip the pictures (a second or more each on a loaded machine) where a test is about training."""
    monkeypatch.setattr(Trainer, "_figures", lambda self, final=False: None)


def tiny(**over):
    """ring-8 with a small MLP: milliseconds a step."""
    cfg = config.replace(presets.preset("ring-8"), {
        "model_args.width": 16, "model_args.depth": 2, "batch_size": 32, "steps": 10, "eval_every": 0,
        "sample_every": 0, "checkpoint_every": 0, "log_every": 1000, "eval_samples": 200})
    return config.replace(cfg, over)


def _state(t):
    """Every array that defines where a run is: parameters, buffers, optimizer state."""
    out = {}
    for net, mod in (("G", t.model.G), ("D", t.model.D)):
        for k, v in mod.state_dict().items():
            out[f"{net}.{k}"] = v
    for name, opt in (("opt_g", t.opt_g), ("opt_d", t.opt_d)):
        for k, v in opt.state_dict().items():
            out[f"{name}.{k}"] = np.asarray(v)
    return out


def _assert_identical(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{k} differs")


def _records(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


# --- the step ----------------------------------------------------------------------------------

def test_train_step_matches_hand_written_loop(tmp_path):
    cfg = tiny(n_critic=2)
    t = Trainer(cfg, tmp_path, progress=False)
    # a second copy of the same model, trained by hand with the same random draws
    ref = Trainer(cfg, tmp_path / "ref", progress=False)
    G, D, m = ref.model.G, ref.model.D, ref.model
    loss = losses.get("nonsaturating")
    rng = ref.rng
    for _ in range(3):
        for _ in range(2):
            real, _ = ref.data.next(32, rng)
            fake = G(m.sample_z(32, rng))
            ref.opt_d.zero_grad()
            _, g = loss.d_real(D(real)); D.backward(g)
            _, g = loss.d_fake(D(fake)); D.backward(g)
            ref.opt_d.step()
        ref.opt_g.zero_grad()
        _, g = loss.g_loss(D(fake))
        G.backward(D.backward(g))
        ref.opt_g.step()
        t.train_step()
    _assert_identical(_state(t), _state(ref))
    assert t.step == 3


def test_g_step_changes_only_g_and_leaves_d_grads_zero(tmp_path):
    t = Trainer(tiny(), tmp_path, progress=False)
    t.train_step()
    for p in t.model.D.parameters():
        assert not p.grad.any(), "D's grads should be zero after the G step"


@pytest.mark.parametrize("loss", losses.names())
def test_every_loss_trains_a_few_steps(tmp_path, loss):
    t = Trainer(tiny(loss=loss), tmp_path, progress=False)
    recs = [t.train_step() for _ in range(3)]
    key = "prob" if loss in ("minimax", "nonsaturating") else "score"
    for r in recs:
        for k in ("d_loss", "d_loss.real", "d_loss.fake", "g_loss", f"D_real_{key}", f"D_fake_{key}"):
            assert np.isfinite(r[k]), (k, r)
        assert r["d_loss"] == pytest.approx(r["d_loss.real"] + r["d_loss.fake"])
        other = "score" if key == "prob" else "prob"
        assert f"D_real_{other}" not in r
    if key == "prob":
        assert all(0 < r["D_real_prob"] < 1 for r in recs)


@pytest.mark.parametrize("penalty", ["gp", "r1", "lipschitz", "lipschitz-one-sided"])
def test_every_penalty_trains_a_few_steps(tmp_path, penalty):
    t = Trainer(tiny(loss="wasserstein", penalty=penalty, penalty_weight=10.0, n_critic=2), tmp_path, progress=False)
    recs = [t.train_step() for _ in range(3)]
    assert all(np.isfinite(r["penalty"]) for r in recs)
    if penalty != "lipschitz-one-sided":        # one-sided is 0 while D is 1-Lipschitz already
        assert all(r["penalty"] > 0 for r in recs)


def test_penalty_gradient_reaches_d(tmp_path):
    """With a huge λ the D update is dominated by the penalty: a run with it differs from one without."""
    a = Trainer(tiny(penalty="gp", penalty_weight=100.0), tmp_path / "a", progress=False)
    b = Trainer(tiny(penalty="none"), tmp_path / "b", progress=False)
    a.train_step(); b.train_step()
    wa, wb = a.model.D.state_dict()["0.weight"], b.model.D.state_dict()["0.weight"]
    assert not np.array_equal(wa, wb)


def test_weight_clipping_bounds_every_d_parameter(tmp_path):
    t = Trainer(tiny(loss="wasserstein", clip=0.01, **{"optim_d.name": "rmsprop", "optim_d.lr": 5e-3}),
                tmp_path, progress=False)
    for _ in range(2):
        t.train_step()
    for p in t.model.D.parameters():
        assert np.abs(p.data).max() <= 0.01
    assert any(np.abs(p.data).max() == np.float32(0.01) for p in t.model.D.parameters())


def test_gradient_norms_are_computed_on_logging_steps_only(tmp_path):
    t = Trainer(tiny(log_every=3, steps=7), tmp_path, progress=False)
    has = ["grad_norm" in t.train_step() for _ in range(7)]
    assert has == [False, False, True, False, False, True, True]      # every 3rd step and the last


def test_metrics_record_every_parameter_gradient_norm(tmp_path):
    t = Trainer(tiny(log_every=1), tmp_path, progress=False)
    r = t.train_step()
    names = [f"G.{k}" for k, _ in t.model.G.named_parameters()] + [f"D.{k}" for k, _ in t.model.D.named_parameters()]
    assert list(r["grad_norm"]) == names
    # the G norms are those of the gradients the G step left behind
    for k, p in t.model.G.named_parameters():
        assert r["grad_norm"][f"G.{k}"] == pytest.approx(float(np.linalg.norm(p.grad.astype(np.float64))), rel=1e-5)


@pytest.mark.parametrize("preset", ["dcgan-digits", "cgan-digits"])
def test_an_image_run_draws_samples_latent_paths_losses_and_gradient_norms(tmp_path, preset):
    pytest.importorskip("sklearn")
    cfg = config.replace(presets.preset(preset), {"model_args.width": 4, "batch_size": 8, "steps": 2,
                                                  "log_every": 1, "sample_every": 2})
    train(cfg, out=str(tmp_path), progress=False, stream=open(os.devnull, "w"))
    assert {"samples.png", "interpolation.png", "losses.png", "d_outputs.png", "grad_norms.png"} <= \
        set(os.listdir(tmp_path))


@pytest.mark.parametrize("penalty", ["gp", "lipschitz"])
def test_conditional_model_with_penalty(tmp_path, penalty):
    pytest.importorskip("sklearn")
    cfg = config.replace(presets.preset("cgan-digits"), {
        "model_args.width": 4, "model_args.batchnorm_in_d": False, "batch_size": 8, "loss": "wasserstein",
        "penalty": penalty, "n_critic": 1, "steps": 2})
    t = Trainer(cfg, tmp_path, progress=False)
    r = t.train_step()
    assert r["penalty"] > 0 and np.isfinite(r["d_loss"])


@pytest.mark.parametrize("preset", ["wgan-digits", "wgan-gp-digits", "lipschitz-digits", "lipschitz-one-sided-digits",
                                    "r1-digits", "sn-hinge-digits"])
def test_constrained_critic_presets_on_the_digits_train(tmp_path, preset):
    """Each Q1/Q2 critic also has a digits preset (FIDs: benchmarks/results/digits_penalties.md)."""
    pytest.importorskip("sklearn")
    cfg = config.replace(presets.preset(preset), {"model_args.width": 4, "batch_size": 8, "n_critic": 1,
                                                 "steps": 2})
    t = Trainer(cfg, tmp_path, progress=False)
    r = t.train_step()
    assert np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"])
    D = t.model.D
    if cfg.penalty == "lipschitz-one-sided":     # 0 while D's slope is < 1 (tiny D, first step)
        assert r["penalty"] >= 0
    elif cfg.penalty != "none":
        assert r["penalty"] > 0
    if cfg.clip:
        assert all(np.abs(p.data).max() <= cfg.clip for p in D.parameters())
    if cfg.model_args.get("spectral_norm"):
        assert any(k.endswith("weight_u") for k in D.state_dict())


def test_penalty_with_batchnorm_critic_is_a_clear_config_error(tmp_path):
    pytest.importorskip("sklearn")
    cfg = config.replace(presets.preset("dcgan-digits"), {"model_args.width": 4, "penalty": "gp"})
    with pytest.raises(ConfigError, match="BatchNorm.*batchnorm_in_d"):
        Trainer(cfg, tmp_path, progress=False)


def test_critic_without_second_order_backward_is_a_clear_config_error(tmp_path, monkeypatch):
    def no_jvp(*a, **k):
        raise NotImplementedError("Thing does not support gradient penalties")

    monkeypatch.setattr(penalties, "gradient_penalty", no_jvp)
    t = Trainer(tiny(penalty="gp"), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="penalty 'gp' cannot run on 'mlp'.s D: Thing.*lipschitz"):
        t.train_step()


def test_model_and_data_shapes_must_agree(tmp_path):
    pytest.importorskip("sklearn")
    cfg = config.replace(presets.preset("dcgan-digits"), {"model": "dcgan-28", "model_args.width": 4})
    with pytest.raises(ConfigError, match=r"\(1, 28, 28\).*\(1, 8, 8\)"):
        Trainer(cfg, tmp_path, progress=False)


def test_mlp_follows_the_dimension_of_1d_data(tmp_path):
    t = Trainer(tiny(data="mixture-1d", name="m1"), tmp_path, progress=False)
    assert t.model.data_shape == (1,)
    t.train_step()


def test_evaluation_scores_in_original_coordinates(tmp_path):
    """grid-25 trains on data/4; the metrics multiply back, so a G that outputs the rescaled modes exactly
    is perfect."""
    cfg = tiny(data="grid-25", data_scale=4.0, eval_samples=500)
    t = Trainer(cfg, tmp_path, progress=False)
    from pygan import data

    means = data.toy("grid-25").means / 4.0

    class Exact:
        num_classes = 0
        data_shape = (2,)
        G = t.model.G
        D = t.model.D

        def sample_z(self, n, rng):
            return rng.integers(0, 25, n)

        def g_forward(self, z, labels=None):
            return means[z].astype(np.float32)

        def eval_mode(self):
            return contextlib.nullcontext()

    q = GANTask.evaluate_model(Exact(), cfg, rng=np.random.default_rng(0))
    assert q["modes"] == 25 and q["hq_percent"] == 100.0 and q["kl"] < 0.05


# --- exact resume --------------------------------------------------------------------------------

@pytest.mark.parametrize("over", [{}, {"loss": "wasserstein", "penalty": "gp", "n_critic": 2,
                                       "optim_d.betas": [0.0, 0.9]}],
                         ids=["nonsaturating", "wgan-gp"])
def test_resume_is_bit_identical_to_one_run(tmp_path, over, no_plots):
    n = 6
    straight = Trainer.new(tiny(steps=2 * n, checkpoint_every=4, **over), out=str(tmp_path / "a"), progress=False)
    straight.run()
    half = Trainer.new(tiny(steps=n, checkpoint_every=4, **over), out=str(tmp_path / "b"), progress=False)
    half.run()
    cont = Trainer.resume(str(tmp_path / "b"), steps=2 * n, progress=False)
    assert cont.step == n
    cont.run()
    _assert_identical(_state(straight), _state(cont))
    a, b = _records(tmp_path / "a"), _records(tmp_path / "b")
    assert [r["step"] for r in b] == list(range(1, 2 * n + 1))
    for ra, rb in zip(a, b):
        for r in (ra, rb):
            r.pop("time"), r.pop("data", None)     # data: the first step of each session says which
            r.pop("eval", None)             # the first half evaluated at its end, step n,
            if r["step"] == n:              # and logged its gradient norms there
                r.pop("grad_norm", None)
        assert ra == rb


def test_resume_restores_data_order_of_image_runs(tmp_path):
    pytest.importorskip("sklearn")
    base = config.replace(presets.preset("dcgan-digits"), {
        "model_args.width": 4, "batch_size": 500, "steps": 6, "eval_every": 0, "sample_every": 0,
        "checkpoint_every": 0, "log_every": 1000})     # 3 batches an epoch: the resume lands mid-epoch
    straight = Trainer(base, tmp_path / "a", progress=False)
    for _ in range(6):
        straight.train_step()
    half = Trainer(base, tmp_path / "b", progress=False)
    for _ in range(4):
        half.train_step()
    half.save_checkpoint()
    cont = Trainer.resume(str(tmp_path / "b"), progress=False)
    for _ in range(2):
        cont.train_step()
    _assert_identical(_state(straight), _state(cont))


def test_sampling_and_evaluation_do_not_change_training(tmp_path):
    plain = Trainer(tiny(steps=3), tmp_path / "a", progress=False)
    noisy = Trainer(tiny(steps=3), tmp_path / "b", progress=False)
    for _ in range(3):
        plain.train_step()
        noisy.train_step()
        noisy.evaluate()
        noisy._field(50, 10)                 # the D surface and G's gradient field
    _assert_identical(_state(plain), _state(noisy))


def test_sigkill_mid_training_resumes_from_last_checkpoint(tmp_path, no_plots):
    run = str(tmp_path / "run")
    flags = ["--steps", "100000", "--checkpoint-every", "10", "--batch", "16", "--set", "model_args.width=8",
             "--set", "model_args.depth=2", "--eval-every", "0", "--sample-every", "0", "--log-every", "100000"]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "pygan", "train", "ring-8", "--out", run, "--no-progress", *flags],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        step = 0
        while step < 30:
            assert proc.poll() is None, f"training exited early: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
            try:
                step = ckpt.load(run).step
            except ckpt.CheckpointError:
                pass
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    k = ckpt.load(run).step                  # the last checkpoint the killed run wrote
    assert k >= 30 and k % 10 == 0
    target = k + 15
    cont = Trainer.resume(run, steps=target, progress=False)
    assert cont.step == k                    # only the steps after the checkpoint are lost
    cont.run()
    # the same run without the kill
    cfg = config.replace(presets.preset("ring-8"), {
        "steps": target, "batch_size": 16, "model_args.width": 8, "model_args.depth": 2})
    ref = Trainer(cfg, tmp_path / "ref", progress=False)
    for _ in range(target):
        ref.train_step()
    _assert_identical(_state(ref), _state(cont))
    assert [r["step"] for r in _records(run)] == list(range(1, target + 1))
    assert not [n for n in os.listdir(run) if n.startswith(".tmp-")]


# --- divergence ----------------------------------------------------------------------------------

def test_nan_in_a_loss_term_stops_naming_step_and_term_and_keeps_checkpoint(tmp_path, no_plots):
    t = Trainer.new(tiny(steps=10, checkpoint_every=2), out=str(tmp_path / "run"), progress=False)
    step_fn = t.train_step

    def poisoned():
        if t.step == 4:                       # after step 4, D's last bias becomes NaN
            t.model.D.parameters()[-1].data[...] = np.nan
        return step_fn()

    t.train_step = poisoned
    with pytest.raises(TrainingDiverged, match=r"^step 5: d_loss\.real is nan") as e:
        t.run()
    assert e.value.step == 5 and e.value.term == "d_loss.real"
    assert e.value.checkpoint[1] == 4
    ck = ckpt.load(tmp_path / "run")
    assert ck.step == 4
    D = ck.modules["D"]
    assert np.isfinite(D[list(D)[-1]]).all(), "the bad state must not reach the checkpoint"
    recs = _records(tmp_path / "run")
    assert recs[-1] == {"step": 5, "error": str(e.value)}


def test_nan_in_fake_term_is_named(tmp_path):
    t = Trainer(tiny(), tmp_path, progress=False)
    t.train_step()
    loss = t.loss
    real_d_fake = loss.d_fake
    loss.d_fake = lambda x: real_d_fake(x * np.float32(np.nan))
    with pytest.raises(TrainingDiverged, match=r"^step 2: d_loss\.fake is nan"):
        t.train_step()


def test_infinite_gradient_norm_is_named(tmp_path):
    t = Trainer(tiny(log_every=1), tmp_path, progress=False)
    g_backward = t.model.g_backward

    def bad(gx):
        g_backward(gx)
        t.model.G.parameters()[0].grad[0, 0] = np.inf

    t.model.g_backward = bad
    with pytest.raises(TrainingDiverged, match=r"^step 1: grad_norm\.G\.0\.weight is inf"):
        t.train_step()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_huge_learning_rate_diverges_with_a_named_term(tmp_path):
    cfg = tiny(loss="least_squares", **{"optim_d.name": "sgd", "optim_d.lr": 1e30})
    t = Trainer(cfg, tmp_path, progress=False)
    with pytest.raises(TrainingDiverged, match=r"^step \d+: (d_loss\.(real|fake)|g_loss|penalty|grad_norm\.\S+) is "):
        for _ in range(20):
            t.train_step()


# --- a whole run ---------------------------------------------------------------------------------

def test_run_writes_config_metrics_checkpoint_and_pictures(tmp_path):
    out = str(tmp_path / "run")
    summary = train(tiny(steps=4, eval_every=2, sample_every=4, checkpoint_every=2), out=out, progress=False,
                    stream=open(os.devnull, "w"))
    assert summary["step"] == 4 and set(summary["quality"]) == {"modes", "total_modes", "hq_percent", "kl"}
    files = set(os.listdir(out))
    assert {"config.toml", "metrics.jsonl", "checkpoint.npz", "samples.png", "losses.png", "d_outputs.png",
            "grad_norms.png", "quality.png", "samples"} <= files
    assert os.listdir(os.path.join(out, "samples")) == ["step_000004.png"]
    assert config.load(os.path.join(out, "config.toml")) == tiny(steps=4, eval_every=2, sample_every=4,
                                                                   checkpoint_every=2, out=out)
    recs = _records(out)
    assert [r["step"] for r in recs] == [1, 2, 3, 4]
    assert "eval" in recs[1] and "eval" in recs[3] and "eval" not in recs[0]
    assert all(r["time"] > 0 for r in recs)
    # resuming a finished run is a no-op that says so
    assert resume(out, progress=False, stream=open(os.devnull, "w"))["step"] == 4


def test_existing_run_folder_is_not_overwritten(tmp_path):
    from pygan.training import RunFolderError
    out = str(tmp_path / "run")
    t = Trainer.new(tiny(), out=out, progress=False)
    t.train_step()
    t.save_checkpoint()
    with pytest.raises(RunFolderError, match="--resume"):
        Trainer.new(tiny(), out=out, progress=False)


def test_a_non_finite_parameter_never_reaches_a_checkpoint(tmp_path, no_plots):
    """Between logging steps gradients are not inspected: a NaN that reaches a parameter is caught
    by the next step's loss, or before the checkpoint of that step is written."""
    t = Trainer.new(tiny(steps=10, checkpoint_every=2), out=str(tmp_path / "run"), progress=False)
    opt_step = t.opt_g.step

    def poisoned():
        opt_step()
        if t.step == 3:                       # during step 4, right before its checkpoint
            t.model.G.parameters()[0].data[0, 0] = np.nan

    t.opt_g.step = poisoned
    with pytest.raises(TrainingDiverged, match=r"^step 4: G\.0\.weight is not finite") as e:
        t.run()
    assert e.value.checkpoint[1] == 2 and ckpt.load(tmp_path / "run").step == 2
