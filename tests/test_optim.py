"""Optimizers: the first updates equal torch.optim's, dtypes stay put, state_dict round trips
continue bit-identically, hyperparameters are validated."""
import numpy as np
import pytest

from pygan import nn, optim
from conftest import assert_close, torch_or_skip

SHAPES = [(4, 3), (3,), (2, 2, 2), (1,)]

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("Adam", dict()),
    ("Adam", dict(lr=2e-4, betas=(0.5, 0.999))),
    ("Adam", dict(lr=1e-4, betas=(0.0, 0.9))),
    ("Adam", dict(lr=1e-2, betas=(0.6, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=1e-2, amsgrad=True)),
    ("Adam", dict(lr=1e-2, amsgrad=True, weight_decay=0.05, betas=(0.8, 0.9))),
    ("RMSProp", dict()),
    ("RMSProp", dict(lr=5e-5)),
    ("RMSProp", dict(lr=1e-3, alpha=0.9, eps=1e-6, centered=True)),
    ("RMSProp", dict(lr=1e-3, momentum=0.9)),
    ("RMSProp", dict(lr=1e-3, momentum=0.5, centered=True, weight_decay=0.01)),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}" for n, kw in CASES]
TORCH_NAMES = {"SGD": "SGD", "Adam": "Adam", "RMSProp": "RMSprop"}
BUFFERS = {"SGD": ["momentum_buffer"], "Adam": ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
           "RMSProp": ["square_avg", "grad_avg", "momentum_buffer"]}


def make_params(rng, dtype=np.float64, shapes=SHAPES):
    return [nn.Parameter(rng.standard_normal(s).astype(dtype)) for s in shapes]


def set_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad[...] = g


def random_grads(rng, params):
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_first_ten_updates_match_torch_optim(rng, name, kw):
    torch = torch_or_skip()
    params = make_params(rng)
    start = [p.data.copy() for p in params]
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt = getattr(optim, name)(params, **kw)
    topt = getattr(torch.optim, TORCH_NAMES[name])(tparams, **kw)
    for step in range(10):
        grads = random_grads(rng, params)
        set_grads(params, grads)
        for tp, g in zip(tparams, grads):
            tp.grad = torch.tensor(g.copy())
        opt.step()
        topt.step()
        state = opt.state_dict()
        for i, (p, tp, p0) in enumerate(zip(params, tparams, start)):
            # compare the displacement θ − θ₀, so that tiny learning rates are tested too
            assert_close(p.data - p0, tp.detach().numpy() - p0, 1e-10, f"{name} step {step + 1} param {i}")
            tstate = topt.state[tp]
            for b in BUFFERS[name]:
                if b in tstate and tstate[b] is not None:
                    assert_close(state[f"{i}.{b}"], tstate[b].numpy(), 1e-10, f"{name} step {step + 1} {i}.{b}")
                else:
                    assert f"{i}.{b}" not in state


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_float32_parameters_and_state_stay_float32(rng, name, kw):
    params = make_params(rng, np.float32)
    ref = [nn.Parameter(p.data.astype(np.float64)) for p in params]
    opt, opt64 = getattr(optim, name)(params, **kw), getattr(optim, name)(ref, **kw)
    start = [p.data.astype(np.float64) for p in ref]
    for _ in range(5):
        grads = random_grads(rng, ref)
        set_grads(params, grads)
        set_grads(ref, grads)
        opt.step()
        opt64.step()
    for p in params:
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32
    for k, v in opt.state_dict().items():
        if isinstance(v, np.ndarray):
            assert v.dtype == np.float32, k
    for i, (p, r, p0) in enumerate(zip(params, ref, start)):  # float32 arithmetic, not garbage
        assert_close(p.data - p0, r.data - p0, 2e-3, f"{name} float32 vs float64 param {i}")


def test_parameters_of_mixed_dtypes_are_each_updated_in_their_own_dtype(rng):
    torch = torch_or_skip()
    params = [nn.Parameter(rng.standard_normal((3, 2))), nn.Parameter(rng.standard_normal(4).astype(np.float32)),
              nn.Parameter(rng.standard_normal(2))]
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt, topt = optim.Adam(params, lr=0.01), torch.optim.Adam(tparams, lr=0.01)
    for _ in range(3):
        grads = random_grads(rng, params)
        set_grads(params, grads)
        for tp, g in zip(tparams, grads):
            tp.grad = torch.tensor(g.copy())
        opt.step()
        topt.step()
    assert [p.dtype for p in params] == [np.float64, np.float32, np.float64]
    for p, tp in zip(params, tparams):
        assert_close(p.data, tp.detach().numpy(), 1e-6 if p.dtype == np.float32 else 1e-12, "mixed dtypes")


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_state_dict_round_trip_through_npz_continues_bit_identically(rng, tmp_path, name, kw):
    params = make_params(rng, np.float32)
    opt = getattr(optim, name)(params, **kw)
    for _ in range(3):
        set_grads(params, random_grads(rng, params))
        opt.step()
    np.savez(tmp_path / "opt.npz", **opt.state_dict())
    clone = [nn.Parameter(p.data.copy()) for p in params]
    # a fresh optimizer with different hyperparameters: load_state_dict must restore them all
    fresh = getattr(optim, name)(clone, lr=0.5)
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as f:
        fresh.load_state_dict(f)
    assert fresh.hyperparameters() == opt.hyperparameters() and fresh.step_count == 3
    for _ in range(4):
        grads = random_grads(rng, params)
        set_grads(params, grads)
        set_grads(clone, grads)
        opt.step()
        fresh.step()
    for p, q in zip(params, clone):
        np.testing.assert_array_equal(p.data, q.data)
    a, b = opt.state_dict(), fresh.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_state_dict_is_flat_and_uses_torch_buffer_names(rng):
    params = make_params(rng)
    opt = optim.Adam(params, lr=1e-3, amsgrad=True)
    d = opt.state_dict()
    assert d["optimizer"] == "Adam" and d["n_params"] == len(params) and d["step"] == 0
    assert {"lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad"} <= d.keys()
    for i, p in enumerate(params):
        for b in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            assert d[f"{i}.{b}"].shape == p.shape
    set_grads(params, random_grads(rng, params))
    opt.step()
    assert opt.state_dict()["step"] == 1
    assert not np.array_equal(d["0.exp_avg"], opt.state_dict()["0.exp_avg"])  # a copy, not a view


def test_sgd_momentum_buffer_appears_after_the_first_step_like_torch(rng):
    params = make_params(rng)
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    assert not any(k.endswith("momentum_buffer") for k in opt.state_dict())
    grads = random_grads(rng, params)
    set_grads(params, grads)
    opt.step()
    np.testing.assert_array_equal(opt.state_dict()["1.momentum_buffer"], grads[1])  # clone of g


def test_load_state_dict_errors_name_the_problem(rng):
    params = make_params(rng)
    opt = optim.Adam(params)
    set_grads(params, random_grads(rng, params))
    opt.step()
    d = opt.state_dict()
    bad = dict(d)
    bad["2.exp_avg"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"parameter 2: exp_avg has shape \(3, 3\).*\(2, 2, 2\)"):
        optim.Adam(make_params(rng)).load_state_dict(bad)
    with pytest.raises(ValueError, match="from a Adam optimizer"):
        optim.RMSProp(make_params(rng)).load_state_dict(d)
    with pytest.raises(ValueError, match="4 parameters, this optimizer 2"):
        optim.Adam(make_params(rng)[:2]).load_state_dict(d)
    bad = dict(d)
    del bad["1.exp_avg_sq"]
    with pytest.raises(KeyError, match="1.exp_avg_sq"):
        optim.Adam(make_params(rng)).load_state_dict(bad)
    bad = dict(d, beta1=1.5)
    target = optim.Adam(make_params(rng), lr=0.3)
    with pytest.raises(ValueError, match="beta1"):
        target.load_state_dict(bad)
    assert target.lr == 0.3 and target.beta1 == 0.9  # a failed load leaves the optimizer alone


def test_zero_grad_zeros_every_grad_in_place(rng):
    params = make_params(rng)
    grads_before = [p.grad for p in params]
    set_grads(params, random_grads(rng, params))
    optim.SGD(params, lr=0.1).zero_grad()
    for p, g in zip(params, grads_before):
        assert p.grad is g and not p.grad.any()


def test_step_updates_parameter_data_in_place_and_leaves_grads_alone(rng):
    params = make_params(rng)
    datas = [p.data for p in params]
    grads = random_grads(rng, params)
    set_grads(params, grads)
    optim.Adam(params, weight_decay=0.1).step()
    for p, d, g in zip(params, datas, grads):
        assert p.data is d
        np.testing.assert_array_equal(p.grad, g)


def test_lr_can_change_between_steps(rng):
    p = nn.Parameter(np.zeros(3))
    opt = optim.SGD([p], lr=0.1)
    p.grad[...] = 1.0
    opt.step()
    opt.lr = 0.01
    opt.step()
    np.testing.assert_allclose(p.data, -0.11, rtol=1e-15)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0


def test_optimizer_trains_a_module_end_to_end(rng):
    m = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32))
    opt = optim.Adam(m.parameters(), lr=1e-2)
    first = None
    for _ in range(200):
        out = m(x)
        loss = float(np.mean((out - y) ** 2))
        first = loss if first is None else first
        opt.zero_grad()
        m.backward(2 * (out - y) / out.size)
        opt.step()
    assert loss < 0.1 * first


def test_rmsprop_alias():
    assert optim.RMSprop is optim.RMSProp


@pytest.mark.parametrize("make,match", [
    (lambda ps: optim.SGD(ps, lr=-0.1), "lr"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=-0.5), "momentum"),
    (lambda ps: optim.SGD(ps, lr=0.1, weight_decay=-1), "weight_decay"),
    (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "Nesterov"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda ps: optim.SGD(ps, lr=float("nan")), "lr"),
    (lambda ps: optim.Adam(ps, lr=-1e-3), "lr"),
    (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), "beta1"),
    (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), "beta2"),
    (lambda ps: optim.Adam(ps, betas=(0.9,)), "betas"),
    (lambda ps: optim.Adam(ps, eps=-1e-8), "eps"),
    (lambda ps: optim.Adam(ps, weight_decay=-0.1), "weight_decay"),
    (lambda ps: optim.RMSProp(ps, lr=-1.0), "lr"),
    (lambda ps: optim.RMSProp(ps, alpha=1.5), "alpha"),
    (lambda ps: optim.RMSProp(ps, eps=-1.0), "eps"),
    (lambda ps: optim.RMSProp(ps, momentum=-0.9), "momentum"),
    (lambda ps: optim.RMSProp(ps, weight_decay=-0.9), "weight_decay"),
    (lambda ps: optim.Adam(ps, lr="fast"), "lr"),
])
def test_bad_hyperparameters_raise(rng, make, match):
    with pytest.raises(ValueError, match=match):
        make(make_params(rng))


def test_bad_parameter_lists_raise(rng):
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="parameter 1 is a ndarray"):
        optim.Adam([nn.Parameter(np.zeros(2)), np.zeros(2)])
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"model.parameters\(\)"):
        optim.Adam(m)
    p = nn.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="parameter 1 is the same object as parameter 0"):
        optim.SGD([p, p], lr=0.1)


def test_a_model_recast_after_building_the_optimizer_is_reported(rng):
    m = nn.Linear(2, 3)
    opt = optim.Adam(m.parameters())
    m.double()
    with pytest.raises(ValueError, match="parameter 0's grad is .*float64.*float32"):
        opt.step()


def test_centered_rmsprop_clamps_a_negative_variance_from_rounding(rng):
    p = nn.Parameter(np.zeros(3))
    opt = optim.RMSProp([p], lr=1e-3, centered=True)
    state = opt.state_dict()
    state["0.grad_avg"] = np.ones(3)          # ḡ² > v: impossible in exact arithmetic
    opt.load_state_dict(state)
    p.grad[...] = 1e-3
    opt.step()
    assert np.all(np.isfinite(p.data))
