"""pix2pix's U-Net and PatchGAN (pygan.models.pix2pix): equal to the authors' networks.py written in
PyTorch (forward, input and parameter gradients in float64, state-dict keys), finite differences,
the cuda-emu backend against numpy, and the option checks."""
import functools

import numpy as np
import pytest

import pygan
from pygan import gradcheck, nn
from pygan.models.pix2pix import (NLayerDiscriminator, UnetGenerator, UnetSkipConnectionBlock, build_pix2pix,
                                  level_sizes, patch_map_size)
from conftest import assert_close, compare_with_torch, torch_or_skip


def torch_networks(torch):
    """The authors' UnetSkipConnectionBlock / UnetGenerator / NLayerDiscriminator
    (pytorch-CycleGAN-and-pix2pix, models/networks.py), with the two changes the 28×28 scale needs:
    the way-up ConvTranspose2d takes ``output_padding`` (7 → 3 → 7), and the generator's channel
    rule ngf·min(2^i, 8) is written as a loop for any depth. ``up="nearest"``: Upsample + Conv k3."""
    tnn = torch.nn

    def up_layers(in_c, out_c, size, op, bias, up):
        if up == "transpose":
            return [tnn.ConvTranspose2d(in_c, out_c, kernel_size=4, stride=2, padding=1, output_padding=op, bias=bias)]
        return [tnn.Upsample(size=size, mode="nearest"), tnn.Conv2d(in_c, out_c, 3, 1, 1, bias=bias)]

    class TUnetSkipConnectionBlock(tnn.Module):
        def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                     norm_layer=tnn.BatchNorm2d, use_dropout=False, output_padding=0, out_size=None,
                     up="transpose"):
            super().__init__()
            self.outermost = outermost
            if type(norm_layer) == functools.partial:
                use_bias = norm_layer.func != tnn.BatchNorm2d
            else:
                use_bias = norm_layer != tnn.BatchNorm2d
            if input_nc is None:
                input_nc = outer_nc
            downconv = tnn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            downrelu = tnn.LeakyReLU(0.2, True)
            downnorm = norm_layer(inner_nc)
            uprelu = tnn.ReLU(True)
            upnorm = norm_layer(outer_nc)
            if outermost:
                upconv = up_layers(inner_nc * 2, outer_nc, out_size, output_padding, True, up)
                down = [downconv]
                up_ = [uprelu, *upconv, tnn.Tanh()]
                model = down + [submodule] + up_
            elif innermost:
                upconv = up_layers(inner_nc, outer_nc, out_size, output_padding, use_bias, up)
                down = [downrelu, downconv]
                up_ = [uprelu, *upconv, upnorm]
                model = down + up_
            else:
                upconv = up_layers(inner_nc * 2, outer_nc, out_size, output_padding, use_bias, up)
                down = [downrelu, downconv, downnorm]
                up_ = [uprelu, *upconv, upnorm]
                model = down + [submodule] + up_ + ([tnn.Dropout(0.5)] if use_dropout else [])
            self.model = tnn.Sequential(*model)

        def forward(self, x):
            if self.outermost:
                return self.model(x)
            return torch.cat([x, self.model(x)], 1)

    class TUnetGenerator(tnn.Module):
        def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm_layer=tnn.BatchNorm2d, use_dropout=False,
                     image_size=256, up="transpose"):
            super().__init__()
            sizes = level_sizes(image_size, num_downs)
            ch = lambda i: ngf * min(2 ** i, 8)        # noqa: E731
            block = None
            for i in range(num_downs - 1, -1, -1):
                outer, inner = (output_nc if i == 0 else ch(i - 1)), ch(i)
                kw = dict(norm_layer=norm_layer, output_padding=sizes[i] - 2 * sizes[i + 1], out_size=sizes[i], up=up)
                if i == num_downs - 1:
                    block = TUnetSkipConnectionBlock(outer, inner, innermost=True, **kw)
                elif i == 0:
                    block = TUnetSkipConnectionBlock(outer, inner, input_nc=input_nc, submodule=block,
                                                     outermost=True, **kw)
                else:
                    block = TUnetSkipConnectionBlock(outer, inner, submodule=block,
                                                     use_dropout=use_dropout and outer == inner == 8 * ngf, **kw)
            self.model = block

        def forward(self, x):
            return self.model(x)

    class TNLayerDiscriminator(tnn.Module):
        def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=tnn.BatchNorm2d):
            super().__init__()
            if type(norm_layer) == functools.partial:
                use_bias = norm_layer.func != tnn.BatchNorm2d
            else:
                use_bias = norm_layer != tnn.BatchNorm2d
            kw, padw = 4, 1
            sequence = [tnn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), tnn.LeakyReLU(0.2, True)]
            nf_mult = 1
            for n in range(1, n_layers):
                nf_mult_prev = nf_mult
                nf_mult = min(2 ** n, 8)
                sequence += [tnn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=2, padding=padw,
                                        bias=use_bias), norm_layer(ndf * nf_mult), tnn.LeakyReLU(0.2, True)]
            nf_mult_prev = nf_mult
            nf_mult = min(2 ** n_layers, 8)
            sequence += [tnn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=1, padding=padw,
                                    bias=use_bias), norm_layer(ndf * nf_mult), tnn.LeakyReLU(0.2, True)]
            sequence += [tnn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw)]
            self.model = tnn.Sequential(*sequence)

        def forward(self, x):
            return self.model(x)

    return TUnetGenerator, TNLayerDiscriminator


def _norms(torch, norm):
    if norm == "batch":
        return nn.BatchNorm2d, torch.nn.BatchNorm2d
    if norm == "instance":
        return nn.InstanceNorm2d, functools.partial(torch.nn.InstanceNorm2d, affine=False, track_running_stats=False)
    return (lambda c: nn.Identity()), (lambda c: torch.nn.Identity())


def _randomise(m, rng):
    """Weights of every scale (not the init's N(0, 0.02), which makes every activation tiny) and
    running statistics that are not the initial ones."""
    for sub in m.modules():
        for name, p in sub._parameters.items():
            p.data[...] = rng.uniform(0.5, 1.5, p.shape) if isinstance(sub, nn.BatchNorm2d) and name == "weight" \
                else 0.3 * rng.standard_normal(p.shape)
        if isinstance(sub, nn.BatchNorm2d):
            sub.running_mean[...] = 0.1 * rng.standard_normal(sub.running_mean.shape)
            sub.running_var[...] = rng.uniform(0.5, 2.0, sub.running_var.shape)
    return m


# --- PyTorch as the oracle ----------------------------------------------------------------------

@pytest.mark.parametrize("norm, up, train", [("batch", "transpose", True), ("batch", "transpose", False),
                                             ("instance", "transpose", True), ("none", "nearest", True),
                                             ("batch", "nearest", False)])
def test_unet_generator_at_28_equals_the_authors_network_in_torch(rng, norm, up, train):
    torch = torch_or_skip()
    TG, _ = torch_networks(torch)
    ours, theirs = _norms(torch, norm)
    g = _randomise(UnetGenerator(1, 1, 4, ngf=4, norm_layer=ours, image_size=28, up=up), rng).train(train)
    tg = TG(1, 1, 4, ngf=4, norm_layer=theirs, image_size=28, up=up)
    assert list(g.state_dict()) == list(tg.state_dict())
    compare_with_torch(g, tg, rng.standard_normal((3, 1, 28, 28)))


def test_five_level_unet_with_dropout_levels_equals_torch_in_eval(rng):
    """The authors' layout at depth ≥ 5 (8·ngf → 8·ngf levels with Dropout) on 32×32 with 2 input
    channels; eval mode (Dropout passes through) and batch statistics in train mode without dropout."""
    torch = torch_or_skip()
    TG, _ = torch_networks(torch)
    g = _randomise(UnetGenerator(2, 3, 6, ngf=1, image_size=64, use_dropout=True), rng).eval()
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == 1        # level 4: 8 → 8 channels
    tg = TG(2, 3, 6, ngf=1, image_size=64, use_dropout=True)
    compare_with_torch(g, tg, rng.standard_normal((2, 2, 64, 64)))


@pytest.mark.parametrize("norm, n_layers, train", [("batch", 1, True), ("batch", 2, False), ("instance", 2, True),
                                                   ("none", 3, True)])
def test_patchgan_equals_the_authors_nlayer_discriminator_in_torch(rng, norm, n_layers, train):
    torch = torch_or_skip()
    _, TD = torch_networks(torch)
    ours, theirs = _norms(torch, norm)
    size = 28 if n_layers < 3 else 40
    d = _randomise(NLayerDiscriminator(2, ndf=4, n_layers=n_layers, norm_layer=ours), rng).train(train)
    td = TD(2, ndf=4, n_layers=n_layers, norm_layer=theirs)
    assert list(d.state_dict()) == list(td.state_dict())
    y, _ = compare_with_torch(d, td, rng.standard_normal((3, 2, size, size)))
    side = patch_map_size(size, n_layers)
    assert y.shape == (3, 1, side, side)                 # one logit per patch


def test_a_torch_state_dict_of_the_authors_networks_loads_and_gives_the_same_outputs(rng):
    torch = torch_or_skip()
    TG, TD = torch_networks(torch)
    torch.manual_seed(0)
    tg, td = TG(1, 1, 4, ngf=16, image_size=28).double().eval(), TD(2, ndf=16, n_layers=1).double().eval()
    m = build_pix2pix().G.double().eval(), build_pix2pix().D.double().eval()
    m[0].load_state_dict(tg.state_dict())
    m[1].load_state_dict(td.state_dict())
    x = rng.standard_normal((2, 1, 28, 28))
    pair = rng.standard_normal((2, 2, 28, 28))
    assert_close(m[0](x), tg(torch.from_numpy(x)).detach().numpy(), 1e-12, "U-Net after loading")
    assert_close(m[1](pair), td(torch.from_numpy(pair)).detach().numpy(), 1e-12, "PatchGAN after loading")


# --- finite differences ---------------------------------------------------------------------------

@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_unet_and_patchgan_match_finite_differences(rng, norm):
    ours = nn.BatchNorm2d if norm == "batch" else nn.InstanceNorm2d
    g = _randomise(UnetGenerator(1, 1, 4, ngf=2, norm_layer=ours, image_size=28), rng)
    gradcheck.check_module(g, rng.standard_normal((2, 1, 28, 28)), max_elements=48).raise_if_failed()
    d = _randomise(NLayerDiscriminator(2, ndf=2, n_layers=1, norm_layer=ours), rng)
    gradcheck.check_module(d, rng.standard_normal((2, 2, 28, 28)), max_elements=48).raise_if_failed()


def test_the_outermost_block_has_no_skip_and_the_others_concatenate(rng):
    g = UnetGenerator(1, 1, 3, ngf=2, image_size=16)
    outer = g.model
    assert outer.outermost and isinstance(outer, UnetSkipConnectionBlock)
    level = outer.model[1]
    x = rng.standard_normal((2, 2, 8, 8)).astype(np.float32)
    y = level(x)
    assert y.shape == (2, 4, 8, 8) and np.array_equal(y[:, :2], x)        # cat([x, model(x)], 1)
    assert g(rng.standard_normal((2, 1, 16, 16)).astype(np.float32)).shape == (2, 1, 16, 16)


def test_backward_input_and_backward_params_split_backward(rng):
    m = build_pix2pix(ngf=2, ndf=2)
    for net, shape in ((m.G, (2, 1, 28, 28)), (m.D, (2, 2, 28, 28))):
        net.double()
        x = rng.standard_normal(shape)
        y = net(x)
        gy = rng.standard_normal(y.shape)
        net.zero_grad()
        gx = net.backward(gy)
        grads = [p.grad.copy() for p in net.parameters()]
        net.zero_grad()
        net(x)
        assert_close(net.backward_input(gy), gx, 1e-13, "backward_input")
        assert all(not p.grad.any() for p in net.parameters())
        net(x)
        net.backward_params(gy)
        for p, g in zip(net.parameters(), grads):
            assert_close(p.grad, g, 1e-13, "backward_params")


# --- backends ------------------------------------------------------------------------------------

def test_pix2pix_on_cuda_emu_equals_numpy(rng):
    from pygan.backend.cuda_emu import _import_extension
    if _import_extension()[0] is None:
        pytest.skip("no pygan._cuda_emu")
    x = rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
    y = np.tanh(rng.standard_normal((2, 1, 28, 28))).astype(np.float32)
    outs = []
    for backend in ("numpy", "cuda-emu"):
        pygan.set_backend("numpy")
        pygan.manual_seed(5)
        m = build_pix2pix(ngf=4, ndf=4)
        pygan.set_backend(backend)
        fake = m.g_forward(x)
        logits = m.d_forward(x, fake)
        gy = m.d_backward_input(np.ones_like(logits) / logits.size)
        m.g_backward(gy)
        m.d_forward(x, y)
        m.d_backward_params(np.ones_like(logits))
        outs.append((fake, logits, gy, [p.grad.copy() for p in m.parameters()]))
    pygan.set_backend("numpy")
    (f0, l0, g0, p0), (f1, l1, g1, p1) = outs
    assert_close(f1, f0, 2e-5, "G forward")
    assert_close(l1, l0, 2e-5, "D forward")
    assert_close(g1, g0, 2e-4, "∂L/∂G(x)")
    for a, b in zip(p1, p0):
        assert_close(a, b, 2e-4, "parameter gradient", atol=1e-4)   # biases feeding BatchNorm: ~0


# --- option checks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, match", [
    (dict(num_downs=6), "num_downs 6 does not fit image_size 28"),
    (dict(n_layers=4), "n_layers 4 leaves no patch"),
    (dict(norm="layer"), "norm must be one of batch, instance, none"),
    (dict(up="bilinear"), "up must be one of transpose, nearest"),
    (dict(ngf=0), "ngf must be a positive integer"),
    (dict(width=3), "unknown option 'width'"),
])
def test_bad_options_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        build_pix2pix(**kw)


def test_pair_shapes_are_checked(rng):
    m = build_pix2pix(ngf=2, ndf=2)
    x = rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
    with pytest.raises(ValueError, match=r"the input must have shape \(N, 1, 28, 28\), got \(2, 1, 27, 28\)"):
        m.g_forward(x[:, :, 1:])
    with pytest.raises(ValueError, match=r"the output must have shape"):
        m.d_forward(x, x[:, :, :, 1:])
