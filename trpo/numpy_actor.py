"""A frozen numpy copy of a policy network for sampling actions in the rollout loop.

One small matmul chain per vector step is several times cheaper in numpy than in torch at these
sizes. Sampling uses noise drawn for a whole batch at once (`draw_noise`), then one cheap
transform per step (`sample_with`):
  categorical:        argmax_i (z_i + g_i), g_i ~ Gumbel(0, 1) samples softmax(z)
                      (the Gumbel-max trick; Gumbel 1954, Maddison et al. 2014)
  multi-categorical:  the same per component, on its own slice of the logits
  Bernoulli:          a = [u < sigmoid(z)], u ~ U[0, 1), one per bit: P(a = 1) = sigmoid(z)
  Gaussian:           mu + sigma * eps, eps ~ N(0, I)
Log-probabilities for the update are recomputed in torch on the whole batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import numpy as np
from torch import nn

Head = Literal["categorical", "gaussian", "multi_categorical", "bernoulli"]

NUMPY_ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
}


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow: written as (1 + tanh(z / 2)) / 2."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class NumpyActor:
    """The policy network's weights as float64 arrays and the sampler of its distribution.

    head: which distribution the network output parameterises (see the module docstring).
    log_std: the Gaussian's state-independent log std [act_dim] (Gaussian head only).
    nvec: the number of choices per component (multi-categorical head only); the output layer
    holds their logits side by side, sum(nvec) in all.
    """

    def __init__(
        self,
        net: nn.Sequential,
        activation: str,
        head: Head,
        log_std: np.ndarray | None = None,
        nvec: Sequence[int] = (),
    ) -> None:
        linears = [m for m in net if isinstance(m, nn.Linear)]
        self.weights = [m.weight.detach().numpy().T.astype(np.float64) for m in linears]
        self.biases = [m.bias.detach().numpy().astype(np.float64) for m in linears]
        self.act = NUMPY_ACTIVATIONS[activation]
        self.head = head
        if (head == "gaussian") != (log_std is not None):
            raise ValueError("log_std is given for the Gaussian head and only for it")
        self.std = None if log_std is None else np.exp(log_std)
        pairs = list(zip(self.weights, self.biases, strict=True))
        self.hidden, self.output = pairs[:-1], pairs[-1]
        self.n_out = self.weights[-1].shape[1]
        ends = list(itertools.accumulate(nvec))
        # [start, stop) of each component's logits (multi-categorical)
        self.segments = list(zip([0, *ends][:-1], ends, strict=True))
        if head == "multi_categorical" and (not ends or ends[-1] != self.n_out):
            raise ValueError(f"nvec {list(nvec)} does not add up to {self.n_out} logits")

    def forward(self, obs: np.ndarray) -> np.ndarray:
        """Network output [..., n_out] for obs [..., obs_dim]."""
        h = obs
        for w, b in self.hidden:
            h = self.act(h @ w + b)
        w, b = self.output
        return h @ w + b

    def draw_noise(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Noise for `shape` = (steps, envs) samples, drawn at once (cheaper than per step):
        [*shape, n_out] Gumbel noise (categorical kinds), uniforms (Bernoulli) or standard
        normals (Gaussian)."""
        size = (*shape, self.n_out)
        if self.head in ("categorical", "multi_categorical"):
            return -np.log(-np.log(rng.random(size)))
        if self.head == "bernoulli":
            return rng.random(size)
        return rng.standard_normal(size)

    def _argmax_per_component(self, z: np.ndarray) -> np.ndarray:
        """[..., sum(nvec)] -> [..., len(nvec)]: the argmax within each component's slice."""
        return np.stack([z[..., a:b].argmax(axis=-1) for a, b in self.segments], axis=-1)

    def sample_with(self, obs: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Actions for obs [B, obs_dim] from pre-drawn noise [B, n_out] (see draw_noise):
        [B] int (categorical), [B, components] int, [B, bits] int, or [B, act_dim] float."""
        out = self.forward(obs)
        if self.head == "categorical":
            return (out + noise).argmax(axis=-1)
        if self.head == "multi_categorical":
            return self._argmax_per_component(out + noise)
        if self.head == "bernoulli":
            return (noise < sigmoid(out)).astype(np.int64)
        return out + self.std * noise

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.sample_with(obs, self.draw_noise(rng, (obs.shape[0],)))

    def deterministic(self, obs: np.ndarray) -> np.ndarray:
        """The most likely action: argmax (per component), bits with logit > 0, or the mean."""
        out = self.forward(obs)
        if self.head == "categorical":
            return out.argmax(axis=-1)
        if self.head == "multi_categorical":
            return self._argmax_per_component(out)
        if self.head == "bernoulli":
            return (out > 0).astype(np.int64)
        return out
