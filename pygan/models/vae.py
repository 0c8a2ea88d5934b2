"""Autoencoder, variational autoencoder (VAE) and conditional VAE, with hand-derived ELBO gradients.

Derivations: docs/gradients.md#vae (reconstruction term, closed-form KL, reparameterisation).

Images come in pygan's convention, (N, C, H, W) in [−1, 1] (what :func:`pygan.data.load_digits`
and :func:`pygan.data.load_mnist` return); the likelihood is defined on t = (x + 1)/2 ∈ [0, 1],
and images handed back (``decode``, ``sample``, ``reconstruct``) are in [−1, 1] again, so the same
plots and judge serve GANs and VAEs. With a (the decoder's output for one image, D pixels):

* ``bernoulli``: a = logits,  −log p(t|z) = Σ_p sp(a_p) − t_p a_p       (BCE with logits)
* ``gaussian``:  a = mean m,  −log p(t|z) = Σ_p (t_p − m_p)²/2σ² + ½ log 2πσ²  (MSE / 2σ² + const);
  σ fixed (``sigma``, on the [0, 1] scale) or learned (one scalar ``log_sigma2`` for all pixels)

The encoder gives μ and s = log σ² (N, L); z = μ + exp(s/2) ⊙ ε with ε ~ N(0, I) given or drawn;
KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + e^{s_j} − 1 − s_j). The loss is the negative ELBO per sample,
averaged over the batch, with an optional weight β on the KL (β-VAE):

    loss = (1/N) Σ_i [ −log p(t_i | z_i) + β · KL_i ].

The autoencoder has z = encoder(x) (no ε, no KL): loss = (1/N) Σ_i −log p(t_i | z_i). The
conditional VAE feeds a label code c (one-hot, or a learned embedding) to both halves:
(μ, s) = f([φ(x), c_enc]) and the decoder sees [z, c_dec].

Usage::

    vae = build_vae("vae-8")                       # or VAE(image_size=8, latent_dim=8, ...)
    loss, parts = vae.elbo(x, eps)                 # eps (N, L), or None to draw from pygan's rng
    vae.zero_grad(); vae.backward()                # adds ∂loss/∂θ into every Parameter.grad
    vae.sample(64, rng); vae.reconstruct(x); mu, logvar = vae.encode(x); vae.decode(z)

``backward()`` differentiates the most recent ``elbo`` call; ``encode``/``decode``/``sample``/
``reconstruct`` run the sub-networks again, so calling one of them in between makes ``backward``
raise instead of silently using the wrong caches.
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..backend import get_backend
from ..gradcheck import EPS, Report, compare, directional_derivative, numeric_gradient
from ..nn.activation import sigmoid
from ..nn.module import Module, Parameter
from ..random import get_rng

__all__ = ["VAE", "AutoEncoder", "CVAE", "build_vae", "VAE_MODELS", "check_elbo"]

_LOG_2PI = math.log(2.0 * math.pi)


def _sigmoid_and_softplus(a):
    """σ(a) and sp(a) = log(1 + eᵃ), stable for any a (from e^(−|a|) ≤ 1)."""
    xp = get_backend().xp
    return sigmoid(a), xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))


class VAE(Module):
    """Variational autoencoder (Kingma & Welling 2014) on (N, C, S, S) images in [−1, 1].

    Architecture (c = ``width``, H = ``hidden``, L = ``latent_dim``, K = label-code size, 0
    unless conditional; D = C·S·S; s = S/4):

    * ``arch="mlp"``:  encoder = Flatten; to_latent = [x, c] (D + K) → H → H → 2L (ReLU);
      decoder = [z, c] (L + K) → H → H → D → Unflatten(C, S, S) (ReLU).
    * ``arch="conv"`` (S a multiple of 4): encoder = Conv(C→c, k4 s2 p1) → LReLU(0.2) →
      Conv(c→2c, k4 s2 p1) → LReLU(0.2) → Flatten (2c·s·s); to_latent = [φ(x), c] → H → 2L (ReLU);
      decoder = [z, c] → 2c·s·s → ReLU → Unflatten(2c, s, s) → ConvT(2c→c, k4 s2 p1) → ReLU →
      ConvT(c→C, k4 s2 p1).

    No BatchNorm: every sample's loss depends on that sample only. The decoder's output a
    (N, C, S, S) is the Bernoulli logits or the Gaussian mean on the [0, 1] scale.

    Arguments: image_size S, channels C, latent_dim L, arch, hidden H, width c, likelihood
    ("bernoulli" | "gaussian"), sigma (fixed Gaussian std on [0, 1]; the initial value when
    learned), learn_sigma, beta (KL weight), num_classes (0: unconditional), conditioning
    ("onehot" | "embedding"), embed_dim (the embedding's size K; one-hot has K = num_classes),
    dtype. Parameters are named like PyTorch's would be for the same attribute names:
    ``encoder.0.weight``, ``to_latent.0.weight``, ``decoder.0.weight``, ``enc_label.weight``,
    ``dec_label.weight``, ``log_sigma2``.

    Gradients: docs/gradients.md#vae.
    """

    deterministic = False

    def __init__(self, image_size: int = 8, latent_dim: int = 8, arch: str = "mlp", hidden: int = 256,
                 width: int = 32, likelihood: str = "bernoulli", sigma: float = 0.1, learn_sigma: bool = False,
                 beta: float = 1.0, num_classes: int = 0, conditioning: str = "onehot", embed_dim: int = 10,
                 channels: int = 1, dtype=np.float32):
        super().__init__()
        for key, v in (("image_size", image_size), ("latent_dim", latent_dim), ("hidden", hidden),
                       ("width", width), ("embed_dim", embed_dim), ("channels", channels)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"{type(self).__name__}: {key} must be a positive integer, got {v!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 0:
            raise ValueError(f"{type(self).__name__}: num_classes must be an integer ≥ 0, got {num_classes!r}")
        if arch not in ("mlp", "conv"):
            raise ValueError(f"{type(self).__name__}: arch must be 'mlp' or 'conv', got {arch!r}")
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"{type(self).__name__}: likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
        if conditioning not in ("onehot", "embedding"):
            raise ValueError(f"{type(self).__name__}: conditioning must be 'onehot' or 'embedding', "
                             f"got {conditioning!r}")
        if not (float(sigma) > 0 and math.isfinite(float(sigma))):
            raise ValueError(f"{type(self).__name__}: sigma must be a positive number, got {sigma!r}")
        if not (float(beta) >= 0 and math.isfinite(float(beta))):
            raise ValueError(f"{type(self).__name__}: beta must be a number ≥ 0, got {beta!r}")
        if arch == "conv" and image_size % 4:
            raise ValueError(f"{type(self).__name__}: arch='conv' needs image_size a multiple of 4, got {image_size}")
        S, C, L, H, c = int(image_size), int(channels), int(latent_dim), int(hidden), int(width)
        self.image_size, self.channels, self.latent_dim = S, C, L
        self.arch, self.hidden, self.width = arch, H, c
        self.likelihood, self.sigma, self.learn_sigma = likelihood, float(sigma), bool(learn_sigma)
        self.beta = float(beta)
        self.num_classes, self.conditioning, self.embed_dim = int(num_classes), conditioning, int(embed_dim)
        self.data_shape = (C, S, S)
        D = C * S * S
        K = 0 if not self.num_classes else (self.num_classes if conditioning == "onehot" else self.embed_dim)
        self.code_dim = K
        out = L if self.deterministic else 2 * L
        s = S // 4
        if arch == "mlp":
            self.feat_dim = D
            self.encoder = nn.Sequential(nn.Flatten())
            self.to_latent = nn.Sequential(nn.Linear(D + K, H, dtype=dtype), nn.ReLU(), nn.Linear(H, H, dtype=dtype),
                                           nn.ReLU(), nn.Linear(H, out, dtype=dtype))
            self.decoder = nn.Sequential(nn.Linear(L + K, H, dtype=dtype), nn.ReLU(), nn.Linear(H, H, dtype=dtype),
                                         nn.ReLU(), nn.Linear(H, D, dtype=dtype), nn.Unflatten(1, self.data_shape))
        else:
            self.feat_dim = F = 2 * c * s * s
            self.encoder = nn.Sequential(nn.Conv2d(C, c, 4, 2, 1, dtype=dtype), nn.LeakyReLU(0.2),
                                         nn.Conv2d(c, 2 * c, 4, 2, 1, dtype=dtype), nn.LeakyReLU(0.2), nn.Flatten())
            self.to_latent = nn.Sequential(nn.Linear(F + K, H, dtype=dtype), nn.ReLU(), nn.Linear(H, out, dtype=dtype))
            self.decoder = nn.Sequential(nn.Linear(L + K, F, dtype=dtype), nn.ReLU(), nn.Unflatten(1, (2 * c, s, s)),
                                         nn.ConvTranspose2d(2 * c, c, 4, 2, 1, dtype=dtype), nn.ReLU(),
                                         nn.ConvTranspose2d(c, C, 4, 2, 1, dtype=dtype))
        if self.num_classes and conditioning == "embedding":
            self.enc_label = nn.Embedding(self.num_classes, K, dtype=dtype)
            self.dec_label = nn.Embedding(self.num_classes, K, dtype=dtype)
        if likelihood == "gaussian" and self.learn_sigma:
            xp = get_backend().xp
            self.log_sigma2 = Parameter(xp.full((1,), 2.0 * math.log(self.sigma), dtype=dtype))
        self._cache = None
        self._config = {}

    # --- description ------------------------------------------------------------------------
    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def name(self) -> str:
        return self._config.get("name", "custom")

    def describe(self):
        cond = f", {self.num_classes} classes ({self.conditioning})" if self.conditional else ""
        return (f"{type(self).__name__}({self.arch} {'×'.join(map(str, self.data_shape))} → z {self.latent_dim}, "
                f"{self.likelihood}{cond})")

    def extra_repr(self):
        return (f"data_shape={self.data_shape}, latent_dim={self.latent_dim}, likelihood={self.likelihood!r}, "
                f"beta={self.beta}, num_classes={self.num_classes}")

    def config(self) -> dict:
        """The constructor arguments (plus ``name`` when built by :func:`build_vae`): enough to rebuild."""
        cfg = dict(image_size=self.image_size, latent_dim=self.latent_dim, arch=self.arch, hidden=self.hidden,
                   width=self.width, likelihood=self.likelihood, sigma=self.sigma, learn_sigma=self.learn_sigma,
                   beta=self.beta, num_classes=self.num_classes, conditioning=self.conditioning,
                   embed_dim=self.embed_dim, channels=self.channels)
        if self.deterministic:
            cfg.pop("beta")
        if "name" in self._config:
            keys = _VAE_DEFAULTS[self._config["name"]][1]
            cfg = {"name": self._config["name"], **{k: v for k, v in cfg.items() if k in keys}}
        return cfg

    # --- checks -----------------------------------------------------------------------------
    def _check_x(self, x):
        xp = get_backend().xp
        if not isinstance(x, xp.ndarray):
            raise TypeError(f"{self.describe()}: expected images as an array, got {type(x).__name__}")
        if x.ndim != 4 or tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(f"{self.describe()}: expected images (N, {', '.join(map(str, self.data_shape))}), "
                             f"got {tuple(x.shape)}")
        if x.dtype != self.dtype:
            raise TypeError(f"{self.describe()}: images are {x.dtype} but the parameters are {self.dtype}; "
                            f"cast the images or call .to({x.dtype})")

    def _check_labels(self, labels, n):
        xp = get_backend().xp
        if not self.conditional:
            if labels is not None:
                raise ValueError(f"{self.describe()} is unconditional; got labels (use a CVAE for labels)")
            return None
        if labels is None:
            raise ValueError(f"{self.describe()}: this model is conditional; pass integer labels of shape ({n},)")
        labels = xp.asarray(labels)
        if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (n,):
            raise ValueError(f"{self.describe()}: expected integer labels of shape ({n},), got "
                             f"{labels.dtype} {tuple(labels.shape)}")
        if n and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(f"{self.describe()}: labels must lie in [0, {self.num_classes}), got "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        return labels

    def _check_z(self, z, n, what):
        xp = get_backend().xp
        if not isinstance(z, xp.ndarray) or z.shape != (n, self.latent_dim):
            raise ValueError(f"{self.describe()}: {what} must be an array of shape ({n}, {self.latent_dim}), "
                             f"got {tuple(getattr(z, 'shape', ())) or type(z).__name__}")
        if z.dtype != self.dtype:
            raise TypeError(f"{self.describe()}: {what} is {z.dtype} but the parameters are {self.dtype}")

    def _code(self, which, labels, dtype):
        """The label code c (N, K): one-hot rows, or rows of the enc_/dec_label embedding."""
        xp = get_backend().xp
        if self.conditioning == "onehot":
            return (labels[:, None] == xp.arange(self.num_classes)[None, :]).astype(dtype)
        return (self.enc_label if which == "enc" else self.dec_label)(labels)

    # --- the two halves -----------------------------------------------------------------------
    def _encode(self, x, labels):
        h = self.encoder(x)
        if self.conditional:
            h = get_backend().xp.concatenate([h, self._code("enc", labels, h.dtype)], axis=1)
        out = self.to_latent(h)
        if self.deterministic:
            return out, None
        L = self.latent_dim
        return out[:, :L], out[:, L:]

    def _decode(self, z, labels):
        if self.conditional:
            z = get_backend().xp.concatenate([z, self._code("dec", labels, z.dtype)], axis=1)
        return self.decoder(z)

    def _to_image(self, a):
        """Decoder output → the likelihood's mean, mapped to [−1, 1]."""
        xp = get_backend().xp
        if self.likelihood == "bernoulli":
            sig, _ = _sigmoid_and_softplus(a)
            return 2 * sig - 1
        return xp.clip(2 * a - 1, -1, 1)

    # --- public API ---------------------------------------------------------------------------
    def forward(self, x, eps=None, labels=None):
        """One pass: x (N, C, S, S) in [−1, 1], eps (N, L) or None (drawn from pygan's rng), labels (N,).

        Returns dict(recon = decoder output a (N, C, S, S): logits or Gaussian mean on [0, 1],
        mu (N, L), logvar (N, L), z (N, L), eps). For the autoencoder logvar and eps are None and
        z = mu. The sub-networks cache for :meth:`backward`, but only :meth:`elbo` arms it.
        """
        self._cache = None
        self._check_x(x)
        n = x.shape[0]
        labels = self._check_labels(labels, n)
        mu, logvar = self._encode(x, labels)
        xp = get_backend().xp
        if self.deterministic:
            z, std = mu, None
            eps = None
        else:
            if eps is None:
                eps = xp.asarray(get_rng().standard_normal((n, self.latent_dim)).astype(x.dtype))
            self._check_z(eps, n, "eps")
            std = xp.exp(logvar * x.dtype.type(0.5))
            z = mu + std * eps
        recon = self._decode(z, labels)
        return dict(recon=recon, mu=mu, logvar=logvar, z=z, eps=eps, std=std, labels=labels)

    def elbo(self, x, eps=None, labels=None, beta: float | None = None):
        """Negative ELBO per sample averaged over the batch: (loss, parts).

        loss = recon + β·kl, with recon = (1/N) Σ_i −log p(t_i | z_i) (summed over pixels, nats) and
        kl = (1/N) Σ_i KL(N(μ_i, σ_i²) ‖ N(0, I)) (summed over latent dims; 0 for the autoencoder).
        parts = {"loss", "recon", "kl", "elbo" (= −(recon + kl), whatever β)} as Python floats.
        β defaults to ``self.beta``. Arms :meth:`backward` with ∂loss/∂a, μ, s, ε, σ.
        """
        out = self.forward(x, eps, labels)
        beta = self.beta if beta is None else float(beta)
        xp = get_backend().xp
        dt = x.dtype.type
        n = x.shape[0]
        a = out["recon"]
        t = (x + dt(1)) * dt(0.5)
        inv_n = dt(1.0 / n)
        g_sigma = None
        if self.likelihood == "bernoulli":
            sig, sp = _sigmoid_and_softplus(a)
            sp -= t * a                                            # sp(a) − t·a per pixel
            recon = float(sp.sum()) / n
            g_a = sig
            g_a -= t
            g_a *= inv_n                                           # (σ(a) − t)/N
        else:
            d = a - t
            sq = float(xp.vdot(d, d))                              # Σ over batch and pixels of (m − t)²
            npix = a[0].size
            if self.learn_sigma:
                s = self.log_sigma2.data
                s_val = float(s[0])
                inv_var = xp.exp(-s)                               # (1,) in dtype
                g_sigma = dt(0.5 * npix) - dt(0.5) * inv_var * dt(sq / n)   # ∂loss/∂s
            else:
                s_val = 2.0 * math.log(self.sigma)
                inv_var = dt(math.exp(-s_val))
            recon = 0.5 * math.exp(-s_val) * sq / n + 0.5 * npix * (s_val + _LOG_2PI)
            g_a = d
            g_a *= inv_var * inv_n                                 # (m − t)/(σ² N)
        if self.deterministic:
            kl = 0.0
            var = None
        else:
            mu, lv = out["mu"], out["logvar"]
            var = xp.exp(lv)
            kl = 0.5 * float((mu * mu + var - 1 - lv).sum()) / n
        loss = recon + beta * kl
        if not (math.isfinite(recon) and math.isfinite(kl)):
            from ..losses import NonFiniteLoss
            term = "recon" if not math.isfinite(recon) else "kl"
            value = recon if term == "recon" else kl
            raise NonFiniteLoss(f"{self.describe()}: the {term} term of the ELBO is {value}", "elbo", term, value)
        self._cache = dict(g_a=g_a, g_sigma=g_sigma, mu=out["mu"], var=var, std=out["std"], eps=out["eps"],
                           labels=out["labels"], beta=beta, n=n)
        return loss, {"loss": loss, "recon": recon, "kl": kl, "elbo": -(recon + kl)}

    def backward(self):
        """Adds ∂loss/∂θ of the most recent :meth:`elbo` into every Parameter.grad (docs/gradients.md#vae).

        With g_a = ∂loss/∂a from the likelihood, g_z = decoder.backward(g_a)[:, :L], and
        b = β/N:  ∂loss/∂μ = g_z + b·μ,  ∂loss/∂s = ½ g_z ⊙ ε ⊙ σ + ½ b (e^s − 1);
        then the encoder's backward on [∂loss/∂μ, ∂loss/∂s] (the label codes' rows get theirs).
        """
        c = self._cache
        if c is None:
            raise RuntimeError(f"{self.describe()}: backward() needs a preceding elbo() (and no encode/decode/"
                               f"sample/reconstruct/forward in between: they overwrite the caches)")
        self._cache = None
        xp = get_backend().xp
        L = self.latent_dim
        g_in = self.decoder.backward(c["g_a"])
        if self.conditional:
            if self.conditioning == "embedding":
                self.dec_label.backward(g_in[:, L:])
            g_z = g_in[:, :L]
        else:
            g_z = g_in
        if c["g_sigma"] is not None:
            self.log_sigma2.grad += c["g_sigma"]
        if self.deterministic:
            g_out = g_z
        else:
            dt = g_z.dtype.type
            b = dt(c["beta"] / c["n"])
            g_out = xp.empty((g_z.shape[0], 2 * L), dtype=g_z.dtype)
            g_mu, g_s = g_out[:, :L], g_out[:, L:]
            xp.multiply(c["mu"], b, out=g_mu)
            g_mu += g_z                                            # ∂z/∂μ = 1; ∂KL/∂μ = μ
            xp.multiply(g_z, c["eps"], out=g_s)
            g_s *= c["std"]
            g_s += b * (c["var"] - dt(1))
            g_s *= dt(0.5)                                         # ∂z/∂s = ε σ/2; ∂KL/∂s = (e^s − 1)/2
        g_h = self.to_latent.backward(g_out)
        if self.conditional:
            if self.conditioning == "embedding":
                self.enc_label.backward(g_h[:, self.feat_dim:])
            g_h = g_h[:, :self.feat_dim]
        self.encoder.backward(g_h)

    def elbo_and_backward(self, x, eps=None, labels=None, beta: float | None = None):
        """:meth:`elbo` then :meth:`backward`; returns (loss, parts). Gradients are added (zero them first)."""
        loss, parts = self.elbo(x, eps, labels, beta)
        self.backward()
        return loss, parts

    def encode(self, x, labels=None):
        """(μ, log σ²) of q(z | x[, y]), each (N, L); for the autoencoder (z, None)."""
        self._cache = None
        self._check_x(x)
        return self._encode(x, self._check_labels(labels, x.shape[0]))

    def decode(self, z, labels=None):
        """The mean of p(x | z[, y]) as images (N, C, S, S) in [−1, 1]: 2σ(a) − 1 or clip(2m − 1)."""
        self._cache = None
        n = getattr(z, "shape", (0,))[0]
        self._check_z(z, n, "z")
        return self._to_image(self._decode(z, self._check_labels(labels, n)))

    def reconstruct(self, x, labels=None):
        """decode(μ(x)): the reconstruction at the posterior mean, images in [−1, 1]."""
        mu, _ = self.encode(x, labels)
        return self.decode(mu, labels)

    def sample_z(self, n: int, rng=None):
        """z ~ N(0, I), (n, L) in the parameters' dtype, on the backend."""
        z = (rng or get_rng()).standard_normal((int(n), self.latent_dim)).astype(self.dtype)
        return get_backend().xp.asarray(z)

    def sample(self, n: int, rng=None, labels=None):
        """n images from the prior: decode(z), z ~ N(0, I) (for a CVAE, labels (n,) — default
        0, 1, …, num_classes − 1 repeated). Images (n, C, S, S) in [−1, 1]."""
        z = self.sample_z(n, rng)
        if self.conditional and labels is None:
            labels = get_backend().xp.arange(int(n)) % self.num_classes
        return self.decode(z, labels)


    def g_forward(self, z, labels=None):
        """:meth:`decode` under the GAN models' name, so that code written for a
        :class:`pygan.models.GANModel`'s generator side (``sample_z`` + ``g_forward``:
        the image judge, sample grids) takes a VAE as it is."""
        return self.decode(z, labels)


class AutoEncoder(VAE):
    """Deterministic autoencoder: z = f(x) (no ε, no KL), loss = (1/N) Σ_i −log p(t_i | z_i).

    Same architectures and likelihoods as :class:`VAE` (to_latent ends in L, not 2L). ``sample``
    decodes z ~ N(0, I), which an autoencoder never trained on: it shows why a VAE needs its KL
    term. ``encode`` returns (z, None).
    """

    deterministic = True

    def __init__(self, image_size: int = 8, latent_dim: int = 8, **kwargs):
        kwargs.pop("beta", None)
        super().__init__(image_size, latent_dim, beta=0.0, **kwargs)


class CVAE(VAE):
    """Conditional VAE (Sohn et al. 2015): q(z | x, y) and p(x | z, y) with the label code
    (one-hot or a learned embedding) concatenated to the encoder's features and to z.
    ``num_classes`` defaults to 10."""

    def __init__(self, image_size: int = 8, latent_dim: int = 8, num_classes: int = 10, **kwargs):
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes <= 0:
            raise ValueError(f"CVAE: num_classes must be a positive integer, got {num_classes!r}")
        super().__init__(image_size, latent_dim, num_classes=num_classes, **kwargs)


# --- registry -----------------------------------------------------------------------------------

_VAE_COMMON = dict(arch="mlp", hidden=256, width=32, likelihood="bernoulli", sigma=0.1, learn_sigma=False,
                   channels=1)
_VAE_DEFAULTS = {
    "ae-8": (AutoEncoder, dict(image_size=8, latent_dim=8, **_VAE_COMMON)),
    "vae-8": (VAE, dict(image_size=8, latent_dim=8, beta=1.0, **_VAE_COMMON)),
    "cvae-8": (CVAE, dict(image_size=8, latent_dim=8, beta=1.0, num_classes=10, conditioning="onehot",
                          embed_dim=10, **_VAE_COMMON)),
    "ae-28": (AutoEncoder, dict(image_size=28, latent_dim=16, **{**_VAE_COMMON, "arch": "conv", "hidden": 512})),
    "vae-28": (VAE, dict(image_size=28, latent_dim=16, beta=1.0, **{**_VAE_COMMON, "arch": "conv", "hidden": 512})),
    "cvae-28": (CVAE, dict(image_size=28, latent_dim=16, beta=1.0, num_classes=10, conditioning="onehot",
                           embed_dim=10, **{**_VAE_COMMON, "arch": "conv", "hidden": 512})),
}
VAE_MODELS = tuple(_VAE_DEFAULTS)


def build_vae(name: str, **overrides) -> VAE:
    """Build the autoencoder / VAE / CVAE ``name`` (one of :data:`VAE_MODELS`) with option overrides.

    ``*-8``: the 8×8 scikit-learn digits (MLP, H = 256, L = 8); ``*-28``: MNIST-sized (conv, width
    32, H = 512, L = 16). Every constructor argument of :class:`VAE` is an option
    (``build_vae("vae-8", latent_dim=2, arch="conv")``); an unknown one is an error naming the
    valid ones. ``model.config()`` returns ``{"name": …, every option}``; ``build_vae(**config)``
    rebuilds it. float32 parameters from pygan's global generator (``pygan.manual_seed``).
    """
    if name not in _VAE_DEFAULTS:
        raise ValueError(f"unknown VAE model {name!r}; available: {', '.join(VAE_MODELS)}")
    cls, defaults = _VAE_DEFAULTS[name]
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(f"build_vae({name!r}): unknown option{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}; options: {', '.join(defaults)}")
    cfg = {**defaults, **overrides}
    model = cls(**cfg)
    model._config = {"name": name, **cfg}
    return model


# --- gradient check -----------------------------------------------------------------------------

def check_elbo(model: VAE, x, eps=None, labels=None, *, beta: float | None = None, seed: int = 0,
               max_elements: int | None = 256, rtol: float = 1e-6) -> Report:
    """Finite-difference check of every parameter gradient of ``model.elbo`` in float64, ε held fixed.

    The model is deep-copied and cast to float64; x (N, C, S, S), eps (N, L) (drawn from ``seed``
    when None; ignored by the autoencoder), labels (N,) for a CVAE. Returns a
    :class:`pygan.gradcheck.Report` (one row per parameter, plus a random direction for big ones).
    """
    import copy
    rng = np.random.default_rng(seed)
    m = copy.deepcopy(model).double()
    xp = get_backend().xp
    x = xp.asarray(x, dtype=np.float64)
    if not m.deterministic:
        eps = rng.standard_normal((x.shape[0], m.latent_dim)) if eps is None else eps
        eps = xp.asarray(eps, dtype=np.float64)
    else:
        eps = None
    m.zero_grad()
    m.elbo_and_backward(x, eps, labels, beta)
    grads = {name: np.array(p.grad, dtype=np.float64) for name, p in m.named_parameters()}

    def f():
        return m.elbo(x, eps, labels, beta)[0]

    report = Report(f"check_elbo: {m.describe()}, batch {x.shape[0]}")
    f_max = [0.0]

    def f_tracked():
        v = f()
        f_max[0] = max(f_max[0], abs(v))
        return v

    for name, p in m.named_parameters():
        g = grads[name]
        size = p.data.size
        if max_elements is None or size <= max_elements:
            idx, ref = None, g.ravel()
        else:
            idx = np.sort(rng.choice(size, size=max_elements, replace=False))
            ref = g.ravel()[idx]
        num = numeric_gradient(f_tracked, p.data, idx, EPS)
        report.add(compare(name, ref, num, rtol, 10 * np.finfo(np.float64).eps * f_max[0] / EPS))
        if idx is not None:
            # one unit-norm direction over the whole tensor: a step of length ε, so that, as for the
            # single elements, ReLU pre-activations move by O(ε) and rarely cross their kink
            d = rng.standard_normal(p.data.shape)
            d /= np.linalg.norm(d)
            num_d = directional_derivative(f_tracked, p.data, d, EPS)
            report.add(compare(name + " (random direction)", [float(np.sum(g * d))], [num_d], rtol,
                               10 * np.finfo(np.float64).eps * f_max[0] / EPS))
    return report
