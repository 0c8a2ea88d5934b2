"""penalties.orthogonal_regularization (BigGAN's): value and gradient by finite differences and
against PyTorch autograd, which weights it covers, the trainer's g_ortho option."""
import copy

import numpy as np
import pytest

from pygan import gradcheck, nn, penalties
from pygan.models import ConditionalGenerator
from conftest import assert_close, torch_or_skip


def _net():
    return ConditionalGenerator(nn.Sequential(nn.Linear(7, 6), nn.ReLU(), nn.Unflatten(1, (6, 1, 1)),
                                              nn.ConvTranspose2d(6, 3, 3), nn.BatchNorm2d(3),
                                              nn.Conv2d(3, 4, 2, bias=False)), 5, 3, 4).double()


def test_it_covers_every_weight_matrix_and_convolution_but_not_embeddings_or_vectors():
    names = [n for n, _ in penalties.orthogonal_weights(_net())]
    assert names == ["net.0.weight", "net.3.weight", "net.5.weight"]


def test_value_and_gradient_match_the_formula_and_finite_differences(rng):
    m = _net()
    for p in m.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    beta = 0.3
    expect = 0.0
    for _, p in penalties.orthogonal_weights(m):
        W = p.data.reshape(p.shape[0], -1)
        A = W @ W.T
        expect += beta * np.sum((A * (1 - np.eye(len(A)))) ** 2)
    m.zero_grad()
    value = penalties.orthogonal_regularization(m, beta)
    assert value == pytest.approx(expect, rel=1e-13)
    grads = {n: p.grad.copy() for n, p in m.named_parameters()}
    assert not grads["embed.weight"].any() and not grads["net.0.bias"].any()
    for name, p in m.named_parameters():
        def f():
            return penalties.orthogonal_regularization(copy.deepcopy(m), beta)
        for e in gradcheck.check_array(name, f, p.data, grads[name], np.random.default_rng(0)):
            assert e.ok, f"{name}: {e}"
    m.zero_grad()
    assert penalties.orthogonal_regularization(m, 0.0) == 0.0
    assert all(not p.grad.any() for p in m.parameters())


def test_equals_torch_autograd(rng):
    torch = torch_or_skip()
    m = _net()
    for p in m.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    m.zero_grad()
    value = penalties.orthogonal_regularization(m, 1e-2)
    total = 0
    tw = {}
    for name, p in penalties.orthogonal_weights(m):
        t = tw[name] = torch.from_numpy(p.data.copy()).requires_grad_(True)
        W = t.reshape(t.shape[0], -1)
        total = total + 1e-2 * torch.sum((W @ W.T * (1 - torch.eye(W.shape[0], dtype=W.dtype))) ** 2)
    total.backward()
    assert value == pytest.approx(float(total.detach()), rel=1e-12)
    for name, p in penalties.orthogonal_weights(m):
        assert_close(p.grad, tw[name].grad.numpy(), 1e-10, f"∂R/∂{name}")


def test_orthogonal_weights_have_no_penalty():
    lin = nn.Linear(4, 3, bias=False).double()
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 3)))
    lin.weight.data[...] = q.T * np.array([[1.0], [2.0], [0.5]])     # orthogonal rows of any length
    assert penalties.orthogonal_regularization(lin, 1.0) == pytest.approx(0.0, abs=1e-24)
    with pytest.raises(ValueError, match="beta must be ≥ 0"):
        penalties.orthogonal_regularization(lin, -1.0)


def test_trainer_applies_g_ortho_to_g_only(tmp_path):
    import json
    from pygan.training import Trainer, preset
    from pygan.training.config import ConfigError, validate

    def run(beta, out):
        cfg = preset("cgan-digits")
        cfg.steps, cfg.batch_size, cfg.g_ortho = 3, 16, beta
        cfg.sample_every = cfg.checkpoint_every = 0
        cfg.model_args = {"width": 8}
        t = Trainer(cfg, tmp_path / out, progress=False)
        t.run()
        with open(tmp_path / out / "metrics.jsonl") as f:
            return t, [json.loads(line) for line in f]
    plain, rec0 = run(0.0, "a")
    ortho, rec1 = run(0.5, "b")
    steps1 = [r for r in rec1 if "g_loss" in r]
    assert len(steps1) == 3 and all(r["g_ortho"] > 0 for r in steps1)
    assert all("g_ortho" not in r for r in rec0)
    g0, g1 = plain.model.G.state_dict(), ortho.model.G.state_dict()
    assert any(not np.array_equal(g0[k], g1[k]) for k in g0 if k.endswith("weight"))
    # the first D step sees the same G in both runs: only G's update differs
    assert rec0[0]["d_loss"] == rec1[0]["d_loss"] and rec0[0]["g_loss"] == rec1[0]["g_loss"]
    cfg = preset("cgan-digits")
    cfg.g_ortho = -1.0
    with pytest.raises(ConfigError, match="g_ortho must be ≥ 0"):
        validate(cfg)
