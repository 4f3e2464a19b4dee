"""Policy and value networks, and a numpy copy of the policy for fast rollouts.

Policies expose their distribution through plain tensors (logits, or mean and log std) and
closed-form log-probability, KL and entropy: no torch.distributions objects in the hot path.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}
_NUMPY_ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
}
_LOG_2PI = math.log(2.0 * math.pi)


def mlp(
    sizes: Sequence[int],
    activation: str,
    output_gain: float,
    generator: torch.Generator,
) -> nn.Sequential:
    """An MLP with orthogonal init: gain sqrt 2 on hidden layers, output_gain on the last."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        linear = nn.Linear(n_in, n_out)
        last = i == len(sizes) - 2
        nn.init.orthogonal_(
            linear.weight, gain=output_gain if last else math.sqrt(2), generator=generator
        )
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class Policy(nn.Module):
    """Common interface: dist_params(obs) -> tuple of tensors, and closed forms on them."""

    discrete: bool

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def log_prob(self, params: tuple[torch.Tensor, ...], actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def kl(self, old: tuple[torch.Tensor, ...], new: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Per-sample KL(old || new)."""
        raise NotImplementedError

    def entropy(self, params: tuple[torch.Tensor, ...]) -> torch.Tensor:
        raise NotImplementedError

    def numpy_actor(self) -> NumpyActor:
        raise NotImplementedError


class CategoricalPolicy(Policy):
    """pi(a|s) = softmax(logits(s)) over Discrete(n) actions."""

    discrete = True

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        hidden: Sequence[int],
        activation: str,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.activation = activation
        self.net = mlp([obs_dim, *hidden, n_actions], activation, 0.01, generator)

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (torch.log_softmax(self.net(obs), dim=-1),)

    def log_prob(self, params: tuple[torch.Tensor, ...], actions: torch.Tensor) -> torch.Tensor:
        return params[0].gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def kl(self, old: tuple[torch.Tensor, ...], new: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return (old[0].exp() * (old[0] - new[0])).sum(-1)

    def entropy(self, params: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return -(params[0].exp() * params[0]).sum(-1)

    def numpy_actor(self) -> NumpyActor:
        return NumpyActor(self.net, self.activation, log_std=None)


class GaussianPolicy(Policy):
    """pi(a|s) = N(mu(s), diag(exp(log_std)^2)), log_std a state-independent parameter."""

    discrete = False

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int],
        activation: str,
        log_std_init: float,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.activation = activation
        self.net = mlp([obs_dim, *hidden, act_dim], activation, 0.01, generator)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mean = self.net(obs)
        return mean, self.log_std.expand_as(mean)

    def log_prob(self, params: tuple[torch.Tensor, ...], actions: torch.Tensor) -> torch.Tensor:
        mean, log_std = params
        z = (actions - mean) * torch.exp(-log_std)
        return (-0.5 * z.pow(2) - log_std - 0.5 * _LOG_2PI).sum(-1)

    def kl(self, old: tuple[torch.Tensor, ...], new: tuple[torch.Tensor, ...]) -> torch.Tensor:
        mean0, log_std0 = old
        mean1, log_std1 = new
        var_ratio = torch.exp(2.0 * (log_std0 - log_std1))
        mean_term = (mean0 - mean1).pow(2) * torch.exp(-2.0 * log_std1)
        return (log_std1 - log_std0 + 0.5 * (var_ratio + mean_term) - 0.5).sum(-1)

    def entropy(self, params: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return (params[1] + 0.5 * (1.0 + _LOG_2PI)).sum(-1)

    def numpy_actor(self) -> NumpyActor:
        return NumpyActor(
            self.net, self.activation, log_std=self.log_std.detach().numpy().astype(np.float64)
        )


class ValueNetwork(nn.Module):
    """V_phi(s): a separate MLP with a scalar output."""

    def __init__(
        self, obs_dim: int, hidden: Sequence[int], activation: str, generator: torch.Generator
    ) -> None:
        super().__init__()
        self.net = mlp([obs_dim, *hidden, 1], activation, 1.0, generator)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


class NumpyActor:
    """A frozen numpy copy of the policy network for sampling actions in the rollout loop.

    One small matmul chain per vector step is several times cheaper in numpy than in torch at
    these sizes. Log-probabilities for the update are recomputed in torch on the whole batch.
    """

    def __init__(self, net: nn.Sequential, activation: str, log_std: np.ndarray | None) -> None:
        linears = [m for m in net if isinstance(m, nn.Linear)]
        self.weights = [m.weight.detach().numpy().T.astype(np.float64) for m in linears]
        self.biases = [m.bias.detach().numpy().astype(np.float64) for m in linears]
        self.act = _NUMPY_ACTIVATIONS[activation]
        self.std = None if log_std is None else np.exp(log_std)
        pairs = list(zip(self.weights, self.biases, strict=True))
        self.hidden, self.output = pairs[:-1], pairs[-1]
        self.n_out = self.weights[-1].shape[1]

    def forward(self, obs: np.ndarray) -> np.ndarray:
        h = obs
        for w, b in self.hidden:
            h = self.act(h @ w + b)
        w, b = self.output
        return h @ w + b

    def draw_noise(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Noise for `shape` = (steps, envs) samples, drawn at once (cheaper than per step):
        Gumbel noise per action for categorical sampling, standard normals for Gaussians."""
        if self.std is None:  # Gumbel noise: argmax(logits + g) samples softmax(logits)
            return -np.log(-np.log(rng.random((*shape, self.n_out))))
        return rng.standard_normal((*shape, self.n_out))

    def sample_with(self, obs: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Sample actions for a batch of obs from pre-drawn noise (see draw_noise)."""
        out = self.forward(obs)
        if self.std is None:
            return (out + noise).argmax(axis=-1)
        return out + self.std * noise

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.sample_with(obs, self.draw_noise(rng, (obs.shape[0],)))

    def deterministic(self, obs: np.ndarray) -> np.ndarray:
        out = self.forward(obs)
        return out.argmax(axis=-1) if self.std is None else out


def make_policy(
    obs_dim: int,
    discrete: bool,
    act_dim: int,
    hidden: Sequence[int],
    activation: str,
    log_std_init: float,
    generator: torch.Generator,
) -> Policy:
    """Categorical policy for Discrete(act_dim), diagonal Gaussian for Box(act_dim,)."""
    if discrete:
        return CategoricalPolicy(obs_dim, act_dim, hidden, activation, generator)
    return GaussianPolicy(obs_dim, act_dim, hidden, activation, log_std_init, generator)
