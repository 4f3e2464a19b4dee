"""Policy and value networks; `numpy_actor()` gives a numpy copy for fast rollouts.

Policies expose their distribution through plain tensors (log-probabilities, logits, or mean and
log std) and closed-form log-probability, KL and entropy: no torch.distributions objects in the
hot path. One policy per action space: Discrete -> categorical, Box -> diagonal Gaussian,
MultiDiscrete -> one categorical per component, MultiBinary -> one Bernoulli per bit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from trpo.numpy_actor import NumpyActor

if TYPE_CHECKING:
    from trpo.envs import SpaceInfo

_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}
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
    """Common interface: dist_params(obs) -> tuple of tensors, and closed forms on them.

    Every closed form works per sample: params are [B, ...] tensors, the results [B]."""

    discrete: bool  # integer actions (Discrete, MultiDiscrete, MultiBinary)

    def __init__(
        self,
        obs_dim: int,
        n_outputs: int,
        hidden: Sequence[int],
        activation: str,
        generator: torch.Generator,
    ) -> None:
        """The network obs [B, obs_dim] -> [B, n_outputs] (the distribution's parameters), its
        output layer initialised at gain 0.01 so that pi starts near uniform / mean 0."""
        super().__init__()
        self.activation = activation
        self.net = mlp([obs_dim, *hidden, n_outputs], activation, 0.01, generator)

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

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (torch.log_softmax(self.net(obs), dim=-1),)

    def log_prob(self, params: tuple[torch.Tensor, ...], actions: torch.Tensor) -> torch.Tensor:
        return params[0].gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def kl(self, old: tuple[torch.Tensor, ...], new: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return (old[0].exp() * (old[0] - new[0])).sum(-1)

    def entropy(self, params: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return -(params[0].exp() * params[0]).sum(-1)

    def numpy_actor(self) -> NumpyActor:
        return NumpyActor(self.net, self.activation, "categorical")


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
        super().__init__(obs_dim, act_dim, hidden, activation, generator)
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
        log_std = self.log_std.detach().numpy().astype(np.float64)
        return NumpyActor(self.net, self.activation, "gaussian", log_std=log_std)


class MultiCategoricalPolicy(Policy):
    """pi(a|s) = prod_k softmax(z_k(s))[a_k] over MultiDiscrete(nvec) actions: one independent
    categorical per component k with nvec[k] choices, the logits z_k side by side in one output
    layer (as sb3's MultiCategoricalDistribution). Log-probability, KL and entropy of a product
    of independent distributions are sums over the components (Cover & Thomas, ch. 2).

    dist_params: (log_probs,) [B, sum(nvec)], each component's slice a log-softmax.
    actions: [B, K] integers, K = len(nvec), component k in 0..nvec[k]-1.
    """

    discrete = True

    def __init__(
        self,
        obs_dim: int,
        nvec: Sequence[int],
        hidden: Sequence[int],
        activation: str,
        generator: torch.Generator,
    ) -> None:
        choices = tuple(int(n) for n in nvec)
        if not choices or min(choices) < 1:
            raise ValueError(f"nvec must be positive numbers of choices, got {list(nvec)}")
        super().__init__(obs_dim, sum(choices), hidden, activation, generator)
        self.nvec = choices
        # index of each component's first logit [K]; not saved (follows from nvec)
        first = torch.tensor([0, *itertools.accumulate(self.nvec)][:-1])
        self.register_buffer("first_logit", first, persistent=False)

    def log_softmax(self, logits: torch.Tensor) -> torch.Tensor:
        """Each component's log-softmax over its own slice: [..., sum(nvec)], same shape."""
        parts = logits.split(self.nvec, dim=-1)
        return torch.cat([torch.log_softmax(z, dim=-1) for z in parts], dim=-1)

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.log_softmax(self.net(obs)),)

    def log_prob(self, params: tuple[torch.Tensor, ...], actions: torch.Tensor) -> torch.Tensor:
        """sum_k log p_k(a_k)."""
        return params[0].gather(-1, actions.long() + self.first_logit).sum(-1)

    def kl(self, old: tuple[torch.Tensor, ...], new: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """sum_k sum_i p_ki (log p_ki - log q_ki): the components' KLs added up."""
        return (old[0].exp() * (old[0] - new[0])).sum(-1)

    def entropy(self, params: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """-sum_k sum_i p_ki log p_ki."""
        return -(params[0].exp() * params[0]).sum(-1)

    def numpy_actor(self) -> NumpyActor:
        return NumpyActor(self.net, self.activation, "multi_categorical", nvec=self.nvec)


class BernoulliPolicy(Policy):
    """pi(a|s) = prod_j p_j^a_j (1 - p_j)^(1 - a_j), p_j = sigmoid(z_j(s)), over MultiBinary(n)
    actions: one independent Bernoulli per bit, its logit z_j an output of the network (as sb3's
    BernoulliDistribution). With log p = z - softplus(z) and log(1 - p) = -softplus(z):
      log pi(a)  = sum_j a_j z_j - softplus(z_j)
      H          = sum_j softplus(z_j) - p_j z_j
      KL(p || q) = sum_j p_j (z_j - z'_j) + softplus(z'_j) - softplus(z_j)   (z' = q's logits)

    dist_params: (logits,) [B, n]. actions: [B, n] in {0, 1}.
    """

    discrete = True

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.net(obs),)

    def log_prob(self, params: tuple[torch.Tensor, ...], actions: torch.Tensor) -> torch.Tensor:
        logits = params[0]
        return (actions.to(logits.dtype) * logits - F.softplus(logits)).sum(-1)

    def kl(self, old: tuple[torch.Tensor, ...], new: tuple[torch.Tensor, ...]) -> torch.Tensor:
        z0, z1 = old[0], new[0]
        return (torch.sigmoid(z0) * (z0 - z1) + F.softplus(z1) - F.softplus(z0)).sum(-1)

    def entropy(self, params: tuple[torch.Tensor, ...]) -> torch.Tensor:
        z = params[0]
        return (F.softplus(z) - torch.sigmoid(z) * z).sum(-1)

    def numpy_actor(self) -> NumpyActor:
        return NumpyActor(self.net, self.activation, "bernoulli")


class ValueNetwork(nn.Module):
    """V_phi(s): a separate MLP with a scalar output."""

    def __init__(
        self, obs_dim: int, hidden: Sequence[int], activation: str, generator: torch.Generator
    ) -> None:
        super().__init__()
        self.net = mlp([obs_dim, *hidden, 1], activation, 1.0, generator)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


def make_policy(
    space: SpaceInfo,
    hidden: Sequence[int],
    activation: str,
    log_std_init: float,
    generator: torch.Generator,
) -> Policy:
    """The policy for the env's action space: categorical (Discrete), diagonal Gaussian (Box),
    one categorical per component (MultiDiscrete), one Bernoulli per bit (MultiBinary)."""
    obs_dim, kind = space.obs_dim, space.action_kind
    if kind == "discrete":
        return CategoricalPolicy(obs_dim, space.act_dim, hidden, activation, generator)
    if kind == "box":
        return GaussianPolicy(obs_dim, space.act_dim, hidden, activation, log_std_init, generator)
    if kind == "multi_discrete":
        return MultiCategoricalPolicy(obs_dim, space.action_nvec, hidden, activation, generator)
    if kind == "multi_binary":
        return BernoulliPolicy(obs_dim, space.act_dim, hidden, activation, generator)
    raise ValueError(f"no policy for action kind {kind!r}")
