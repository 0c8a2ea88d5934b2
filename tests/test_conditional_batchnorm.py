"""nn.ConditionalBatchNorm2d (BigGAN's class-conditional BatchNorm): finite differences into x,
the conditioning vector and both projections (train and eval), PyTorch as the oracle (forward,
every gradient, running statistics, state dict), the bound-condition path inside Sequential /
Residual, cuda-emu against numpy, errors."""
import numpy as np
import pytest

import pygan
from pygan import gradcheck, nn
from pygan.gradcheck.suite import ConditionAsParameter
from conftest import assert_close, torch_or_skip


def _cbn(c=3, d=4, train=True, momentum=0.1, rng=None):
    rng = rng or np.random.default_rng(0)
    m = nn.ConditionalBatchNorm2d(c, d, momentum=momentum, init_std=0.7)
    m.bn.running_mean[...] = rng.uniform(-0.5, 0.5, c)
    m.bn.running_var[...] = rng.uniform(0.5, 2.0, c)
    return m.train(train)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(2, 3, 3, 4), (5, 3, 1, 1)], ids=str)
def test_cbn_matches_finite_differences_in_x_c_and_both_projections(rng, train, shape):
    m = ConditionAsParameter(_cbn(train=train), rng.standard_normal((shape[0], 4)))
    rep = gradcheck.check_module(m, rng.standard_normal(shape) * 2 + 0.5)
    rep.raise_if_failed()
    assert {e.name for e in rep.entries} == {"input", "condition", "layer.gain.weight", "layer.bias.weight"}


def _torch_cbn(torch, c, d, momentum):
    class TCBN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = torch.nn.BatchNorm2d(c, affine=False, momentum=momentum)
            self.gain = torch.nn.Linear(d, c, bias=False)
            self.bias = torch.nn.Linear(d, c, bias=False)

        def forward(self, x, cond):
            return self.bn(x) * (1 + self.gain(cond))[:, :, None, None] + self.bias(cond)[:, :, None, None]
    return TCBN()


@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum0.1", "cumulative"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_cbn_equals_the_same_module_in_torch(rng, train, momentum):
    torch = torch_or_skip()
    m = _cbn(train=train, momentum=momentum).double()
    t = _torch_cbn(torch, 3, 4, momentum).double()
    assert list(m.state_dict()) == list(t.state_dict())
    t.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    t.train(train)
    for step in range(2):                     # a second batch: the running statistics move on
        x = rng.standard_normal((4, 3, 3, 5)) * 2 + 0.5
        c = rng.standard_normal((4, 4))
        xt = torch.from_numpy(x).requires_grad_(True)
        ct = torch.from_numpy(c).requires_grad_(True)
        y, yt = m(x, c), t(xt, ct)
        assert_close(y, yt.detach().numpy(), 1e-10, f"forward {step}")
        gy = rng.standard_normal(y.shape)
        m.zero_grad()
        t.zero_grad()
        gx = m.backward(gy)
        yt.backward(torch.from_numpy(gy))
        assert_close(gx, xt.grad.numpy(), 1e-10, f"∂L/∂x {step}")
        assert_close(m.grad_condition, ct.grad.numpy(), 1e-10, f"∂L/∂c {step}")
        tg = dict(t.named_parameters())
        for name, p in m.named_parameters():
            assert_close(p.grad, tg[name].grad.numpy(), 1e-10, f"∂L/∂{name} {step}")
        tb = dict(t.named_buffers())
        for name, b in m.named_buffers():
            assert_close(b, tb[name].numpy(), 1e-12, f"buffer {name} {step}")


def test_cbn_starts_as_plain_batchnorm_and_its_variants_agree(rng):
    x = rng.standard_normal((4, 3, 2, 2))
    c = rng.standard_normal((4, 5))
    m = nn.ConditionalBatchNorm2d(3, 5).double()
    assert not m.gain.weight.data.any() and not m.bias.weight.data.any()
    bn = nn.BatchNorm2d(3, affine=False).double()
    assert_close(m(x, c), bn(x), 1e-15, "zero projections: BatchNorm")
    m = _cbn(3, 5).double()
    m(x, c)
    gy = rng.standard_normal(x.shape)
    m.zero_grad()
    gx = m.backward(gy)
    gc, grads = m.grad_condition.copy(), [p.grad.copy() for p in m.parameters()]
    m.zero_grad()
    assert_close(m.backward_input(gy), gx, 0, "backward_input's ∂L/∂x")
    assert_close(m.grad_condition, gc, 0, "backward_input's ∂L/∂c")
    assert all(not p.grad.any() for p in m.parameters()), "backward_input touched the grads"
    m.grad_condition = None
    assert m.backward_params(gy) is None
    assert_close(m.grad_condition, gc, 0, "backward_params's ∂L/∂c")
    for p, g in zip(m.parameters(), grads):
        assert_close(p.grad, g, 0, "backward_params's grads")


def test_bound_condition_inside_residual_and_sequential(rng):
    """set_condition lets the layer sit in one-input compositions; ∂L/∂c is the sum over the
    layers that read it (each leaves its own in grad_condition)."""
    torch = torch_or_skip()
    c = rng.standard_normal((3, 4))
    cbn1, cbn2 = _cbn(2, 4).double(), _cbn(2, 4, rng=np.random.default_rng(1)).double()
    cbn2.gain.weight.data[...] = rng.standard_normal((2, 4))
    block = nn.Residual(nn.Sequential(cbn1, nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1), cbn2, nn.ReLU(),
                                      nn.Conv2d(2, 2, 3, padding=1))).double()
    for b in (cbn1, cbn2):
        b.set_condition(c)
    x = rng.standard_normal((3, 2, 4, 4))
    y = block(x)
    gy = rng.standard_normal(y.shape)
    gx = block.backward(gy)
    gc = cbn1.grad_condition + cbn2.grad_condition
    t1, t2 = _torch_cbn(torch, 2, 4, 0.1).double(), _torch_cbn(torch, 2, 4, 0.1).double()
    convs = [torch.nn.Conv2d(2, 2, 3, padding=1).double() for _ in range(2)]
    for tm, pm in ((t1, cbn1), (t2, cbn2), (convs[0], block.main[2]), (convs[1], block.main[5])):
        tm.load_state_dict({k: torch.from_numpy(v) for k, v in pm.state_dict().items()})
    xt, ct = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(c).requires_grad_(True)
    h = convs[0](torch.relu(t1(xt, ct)))
    yt = xt + convs[1](torch.relu(t2(h, ct)))
    yt.backward(torch.from_numpy(gy))
    assert_close(y, yt.detach().numpy(), 1e-10, "forward")
    assert_close(gx, xt.grad.numpy(), 1e-10, "∂L/∂x")
    assert_close(gc, ct.grad.numpy(), 1e-10, "∂L/∂c summed over the two layers")


def test_cbn_on_cuda_emu_equals_numpy(rng):
    from pygan.backend.cuda_emu import _import_extension
    if _import_extension()[0] is None:
        pytest.skip("no pygan._cuda_emu")
    x = rng.standard_normal((4, 3, 4, 5)).astype(np.float32)
    c = rng.standard_normal((4, 6)).astype(np.float32)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    out = []
    for backend in ("numpy", "cuda-emu"):
        pygan.set_backend("numpy")
        pygan.manual_seed(3)
        m = _cbn(3, 6)
        pygan.set_backend(backend)
        y = m(x, c)
        gx = m.backward(gy)
        out.append((y, gx, m.grad_condition, m.gain.weight.grad.copy(), m.bias.weight.grad.copy(),
                    m.bn.running_var.copy()))
    for a, b, what in zip(out[1], out[0], ["forward", "∂L/∂x", "∂L/∂c", "∂W_γ", "∂W_β", "running_var"]):
        assert_close(a, b, 2e-6, what)


def test_cbn_errors_name_the_layer(rng):
    m = nn.ConditionalBatchNorm2d(3, 4)
    x = np.zeros((2, 3, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"ConditionalBatchNorm2d\(3, cond 4\): no conditioning vector; "
                                         r"call forward\(x, c\) with c of shape \(2, 4\)"):
        m(x)
    with pytest.raises(ValueError, match=r"conditioning vector \(N, 3, H, W\)|expected conditioning vector"):
        m(x, np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="conditioning vector has 3 rows for a batch of 2"):
        m(x, np.zeros((3, 4), np.float32))
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward"):
        m.backward(x)
    m(x, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"backward got gy of shape \(2, 3, 2, 3\), expected \(2, 3, 2, 2\)"):
        m.backward(np.zeros((2, 3, 2, 3), np.float32))
    with pytest.raises(NotImplementedError, match="does not support gradient penalties"):
        m.jvp(x)
    with pytest.raises(ValueError, match="cond_dim must be a positive integer, got 0"):
        nn.ConditionalBatchNorm2d(3, 0)
