"""Embedding: a lookup table of rows.  Derivation: docs/gradients.md#embedding."""
from __future__ import annotations

import numpy as np

from ..backend import get_backend
from . import init
from .module import Module, Parameter

# vocabularies × lookups up to this size accumulate the weight gradient with a one-hot matmul
# (one BLAS call); larger ones sort the indices and sum runs of equal indices (np.add.reduceat)
_ONE_HOT_MAX = 1 << 15


class Embedding(Module):
    """y = weight[idx] (PyTorch's ``nn.Embedding``).

    Shapes: idx, an integer array of any shape (*) with values in [0, num_embeddings) →
    y (*, embedding_dim); weight (num_embeddings, embedding_dim), initialised N(0, 1) like torch.

    Backward (docs/gradients.md#embedding): row i of ∂L/∂W receives the sum of gy over every
    position where idx = i:  ∂L/∂W_i += Σ_{k: idx_k = i} gy_k.  Returns None (no gradient with
    respect to integer indices). Repeated indices accumulate, without ``np.add.at``: a one-hot
    matmul for small num_embeddings × lookups, else one sort and a segmented sum.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=np.float32):
        super().__init__()
        if int(num_embeddings) != num_embeddings or int(embedding_dim) != embedding_dim \
                or num_embeddings <= 0 or embedding_dim <= 0:
            raise ValueError(f"Embedding: num_embeddings and embedding_dim must be positive integers, "
                             f"got ({num_embeddings!r}, {embedding_dim!r})")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        xp = get_backend().xp
        self.weight = Parameter(xp.empty((self.num_embeddings, self.embedding_dim), dtype=dtype))
        init.normal_(self.weight, 0.0, 1.0)
        self._idx = None

    def describe(self):
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"

    def reset_parameters(self):
        init.normal_(self.weight, 0.0, 1.0)

    def forward(self, idx):
        xp = get_backend().xp
        if not isinstance(idx, xp.ndarray):
            raise TypeError(f"{self.describe()}: expected an integer array of indices, got {type(idx).__name__}")
        if not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"{self.describe()}: expected integer indices, got dtype {idx.dtype}")
        if idx.size:
            lo, hi = int(idx.min()), int(idx.max())
            if lo < 0 or hi >= self.num_embeddings:
                bad = lo if lo < 0 else hi
                raise IndexError(f"{self.describe()}: index {bad} is out of range [0, {self.num_embeddings}) "
                                 f"(indices of shape {tuple(idx.shape)})")
        self._idx = idx.reshape(-1)
        return xp.take(self.weight.data, self._idx, axis=0).reshape(*idx.shape, self.embedding_dim)

    def backward(self, gy):
        idx = self._need_cache(self._idx)
        xp = get_backend().xp
        g = gy.reshape(idx.size, self.embedding_dim)
        grad = self.weight.grad
        if idx.size == 0:
            return None
        if self.num_embeddings * idx.size <= _ONE_HOT_MAX:
            one_hot = (idx[None, :] == xp.arange(self.num_embeddings)[:, None]).astype(g.dtype)
            grad += get_backend().matmul(one_hot, g)
        else:
            order = xp.argsort(idx)
            s = idx[order]
            starts = xp.flatnonzero(xp.concatenate((xp.ones(1, dtype=bool), s[1:] != s[:-1])))
            sums = xp.add.reduceat(g[order], starts, axis=0)
            grad[s[starts]] += sums  # s[starts] are distinct: a plain fancy-index add is exact
        return None
