"""Every layer's backward refuses a wrongly shaped gy naming itself and both shapes, and
Linear's constructor names a bad argument."""
import re

import numpy as np
import pytest

from pygan import nn

LAYERS = [  # (layer, input shape, expected output shape in the message)
    (lambda: nn.Linear(4, 3), (5, 4), r"Linear\(4→3\)", "(5, 3)"),
    (lambda: nn.Linear(4, 3), (2, 5, 4), r"Linear\(4→3\)", "(2, 5, 3)"),
    (nn.ReLU, (2, 3), r"ReLU", "(2, 3)"),
    (lambda: nn.LeakyReLU(0.2), (2, 3), r"LeakyReLU\(0.2\)", "(2, 3)"),
    (nn.Tanh, (2, 3), r"Tanh", "(2, 3)"),
    (nn.Sigmoid, (2, 3), r"Sigmoid", "(2, 3)"),
    (lambda: nn.BatchNorm1d(3), (4, 3), r"BatchNorm1d\(3\)", "(4, 3)"),
    (lambda: nn.BatchNorm2d(3), (2, 3, 2, 2), r"BatchNorm2d\(3\)", "(2, 3, 2, 2)"),
    (lambda: nn.LayerNorm(3), (4, 3), r"LayerNorm\(\(3,\)\)", "(4, 3)"),
    (lambda: nn.Dropout(0.5), (4, 3), r"Dropout\(p=0.5\)", "(4, 3)"),
    (lambda: nn.Flatten(), (2, 3, 4), r"Flatten\(start_dim=1, end_dim=-1\)", "(2, 12)"),
    (lambda: nn.Unflatten(1, (2, 3)), (4, 6), r"Unflatten\(dim=1, unflattened_size=\(2, 3\)\)", "(4, 2, 3)"),
]


@pytest.mark.parametrize("make,shape,name,out", LAYERS, ids=[c[2] for c in LAYERS])
def test_backward_refuses_a_wrongly_shaped_gy_naming_the_layer(rng, make, shape, name, out):
    m = make()
    y = m(rng.standard_normal(shape).astype(np.float32))
    assert str(tuple(y.shape)) == out
    bad = np.ones(y.shape[:-1] + (y.shape[-1] + 1,), np.float32)
    want = f"{name}: backward got gy of shape {re.escape(str(bad.shape))}, expected {re.escape(out)}"
    with pytest.raises(ValueError, match="^" + want + "$"):
        m.backward(bad)
    m.backward(np.ones(y.shape, np.float32))          # the right shape still works


@pytest.mark.parametrize("args,name,value", [((2.5, 3), "in_features", "2.5"), ((2, 0), "out_features", "0"),
                                             ((True, 3), "in_features", "True"), (("4", 3), "in_features", "'4'")])
def test_linear_names_a_bad_constructor_argument(args, name, value):
    with pytest.raises(ValueError, match=rf"^Linear: {name} must be a positive integer, got {value}$"):
        nn.Linear(*args)
    assert nn.Linear(np.int64(2), 3).in_features == 2
