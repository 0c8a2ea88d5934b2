"""Shared test helpers: seeded shapes, and PyTorch as an outside oracle (skipped without it)."""
from __future__ import annotations

import numpy as np
import pytest

import pygan


@pytest.fixture(autouse=True)
def _numpy_backend_and_seed():
    pygan.set_backend("numpy")
    pygan.manual_seed(1234)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)


def torch_or_skip():
    return pytest.importorskip("torch")


def rel_err(a, b) -> float:
    """Normwise relative error max|a − b| / max(max|a|, max|b|, tiny)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape mismatch: mine {a.shape} vs theirs {b.shape}"
    scale = max(np.abs(a).max(initial=0), np.abs(b).max(initial=0), 1e-300)
    return float(np.abs(a - b).max(initial=0) / scale)


def assert_close(mine, theirs, rtol, what, atol=1e-13):
    """Relative error ≤ rtol, or every difference ≤ atol (for gradients that are exactly zero in
    theory, e.g. a bias feeding BatchNorm, where both sides are rounding noise)."""
    err = rel_err(mine, theirs)
    diff = float(np.abs(np.asarray(mine, np.float64) - np.asarray(theirs, np.float64)).max(initial=0))
    assert err <= rtol or diff <= atol, f"{what}: relative error {err:.3e} > {rtol:.0e}\nmine:\n{mine}\ntheirs:\n{theirs}"


def compare_with_torch(mod, tmod, x, rtol=1e-10, seed=0, check_input_grad=True):
    """Float64: copy ``mod``'s state into the torch module ``tmod``, run both forward and
    backward with the same upstream gradient, and compare output, ∂L/∂x and every ∂L/∂θ by name.
    """
    torch = torch_or_skip()
    mod.double()
    tmod.double()
    tmod.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                          for k, v in mod.state_dict().items()})
    tmod.train(mod.training)
    x = np.asarray(x)
    xt = torch.from_numpy(x.copy())
    if x.dtype.kind == "f":
        x = x.astype(np.float64)
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
    y = mod(x)
    yt = tmod(xt)
    assert_close(y, yt.detach().numpy(), rtol, f"{mod.describe()} forward")
    gy = np.random.default_rng(seed).standard_normal(y.shape)
    mod.zero_grad()
    gx = mod.backward(gy)
    yt.backward(torch.from_numpy(gy))
    if check_input_grad and xt.requires_grad:
        assert_close(gx, xt.grad.numpy(), rtol, f"{mod.describe()} input gradient")
    tgrads = dict(tmod.named_parameters())
    for name, p in mod.named_parameters():
        assert name in tgrads, f"parameter {name!r} has no PyTorch counterpart ({list(tgrads)})"
        assert_close(p.grad, tgrads[name].grad.numpy(), rtol, f"{mod.describe()} ∂L/∂{name}")
    # buffers (BatchNorm running statistics) after the forward
    tbufs = dict(tmod.named_buffers())
    for name, b in mod.named_buffers():
        assert_close(b, tbufs[name].numpy(), rtol, f"{mod.describe()} buffer {name}")
    return y, gx
