"""A run's deterministic policy as an ONNX model, the observation normaliser inside the graph.

The graph computes what `trpo.evaluate.LoadedPolicy.act` computes, for a batch:
  x = clip((obs - mean) / sqrt(var + 1e-8), -10, 10)   (only if the run normalised observations)
  z = the policy network's output at x
  action = argmax_i z_i + start                  Discrete(n, start)
         = argmax within each component + start  MultiDiscrete
         = [z_j > 0]                              MultiBinary
         = clip(z, low, high)                     Box: the Gaussian's mean, clipped to the bounds
in float64, as the numpy actor does, so that ONNX Runtime picks the same discrete actions.
Input "obs" [batch, obs_dim]: the env's observation (float64 if the env's observations are,
else float32; a Dict or Tuple observation flattened by gymnasium's FlattenObservation, as in
training). Output "action" [batch] (Discrete) or [batch, act_dim]: int64, or the Box's dtype.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from trpo.envs import make_env
from trpo.evaluate import LoadedPolicy, load_policy
from trpo.export.output import file_target, write_file
from trpo.normalization import CLIP, EPS
from trpo.store import open_run

INPUT, OUTPUT = "obs", "action"


class ExplicitElu(nn.Module):
    """ELU(z) = z for z > 0, exp(z) - 1 otherwise, written with Where and Exp: ONNX Runtime has
    no float64 kernel for the Elu operator."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.where(z > 0, z, torch.exp(torch.clamp(z, max=0.0)) - 1.0)


def float64_network(net: nn.Sequential) -> nn.Sequential:
    """A float64 copy of a policy network, its ELUs (alpha = 1, as trpo.policies builds them)
    replaced by ExplicitElu."""
    layers = [ExplicitElu() if isinstance(m, nn.ELU) else copy.deepcopy(m) for m in net]
    return nn.Sequential(*layers).double()


class DeterministicPolicy(nn.Module):
    """obs [B, obs_dim] -> the env's deterministic action [B] or [B, act_dim] (see the module
    docstring); action_dtype is the dtype of Box actions (integer kinds give int64)."""

    def __init__(self, loaded: LoadedPolicy, action_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        space, stats = loaded.space, loaded.normalizer.stats
        self.kind = space.action_kind
        self.normalize = loaded.normalizer.enabled
        self.action_dtype = action_dtype
        self.register_buffer("shift", torch.as_tensor(stats.mean, dtype=torch.float64))
        self.register_buffer(
            "scale", torch.as_tensor(1.0 / np.sqrt(stats.var + EPS), dtype=torch.float64)
        )
        self.net = float64_network(loaded.policy.net)
        start = np.broadcast_to(np.asarray(space.action_start, dtype=np.int64), space.action_shape)
        self.register_buffer("start", torch.as_tensor(start.copy()))
        ends = list(itertools.accumulate(space.action_nvec))  # MultiDiscrete: logit slices
        self.segments = list(zip([0, *ends][:-1], ends, strict=True))
        low, high = (
            (space.action_low, space.action_high) if self.kind == "box" else (np.zeros(0),) * 2
        )
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float64))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float64))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.to(torch.float64)
        if self.normalize:
            x = torch.clamp((x - self.shift) * self.scale, -CLIP, CLIP)
        z = self.net(x)
        if self.kind == "discrete":
            return z.argmax(dim=-1) + self.start
        if self.kind == "multi_discrete":
            parts = [z[:, a:b].argmax(dim=-1) for a, b in self.segments]
            return torch.stack(parts, dim=-1) + self.start
        if self.kind == "multi_binary":
            return (z > 0).to(torch.int64)
        return torch.clamp(z, self.low, self.high).to(self.action_dtype)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's notes about itself (deprecations inside torch, optional
    torchvision operators it skips): they say nothing about the model."""
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        onnx_log.setLevel(level)


def onnx_model(
    loaded: LoadedPolicy,
    obs_dtype: np.dtype,
    action_dtype: np.dtype,
    metadata: dict[str, str] | None = None,
) -> bytes:
    """The serialised ONNX model (opset of torch's exporter) of `loaded`'s deterministic policy;
    input float64 if obs_dtype is, else float32; metadata goes to the model's properties."""
    import onnx

    in_dtype = torch.float64 if np.dtype(obs_dtype) == np.float64 else torch.float32
    out_dtype = torch.float64 if np.dtype(action_dtype) == np.float64 else torch.float32
    module = DeterministicPolicy(loaded, out_dtype).eval()
    example = torch.zeros(2, loaded.space.obs_dim, dtype=in_dtype)
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            module,
            (example,),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamo=True,
            verbose=False,
        )
    model = program.model_proto
    model.doc_string = (__doc__ or "").strip()
    onnx.helper.set_model_props(model, dict(metadata or {}))
    onnx.checker.check_model(model)
    return model.SerializeToString()


def export_onnx(run_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the run's latest checkpointed policy to `out` as ONNX; returns the file.

    Raises ExportError for an --out that cannot be written (checked first), RunStoreError for a
    folder that is not a run or has no checkpoint."""
    target = file_target(out, "policy.onnx")
    run = open_run(run_dir)
    loaded = load_policy(run.path)
    env, _ = make_env(loaded.config.env_id)
    obs_dtype, action_dtype = env.observation_space.dtype, env.action_space.dtype
    env.close()
    metadata = {
        "run_id": run.id,
        "env_id": loaded.config.env_id,
        "iteration": str(loaded.iteration),
        "action_kind": loaded.space.action_kind,
        "normalized_observations": str(loaded.normalizer.enabled).lower(),
        "input": f"{INPUT} [batch, {loaded.space.obs_dim}] raw observations",
        "output": f"{OUTPUT}: the deterministic action for env.step",
    }
    return write_file(target, onnx_model(loaded, obs_dtype, action_dtype, metadata))
