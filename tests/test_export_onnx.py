"""`python -m trpo export --format onnx`: ONNX Runtime gives the actions of
`trpo.evaluate.load_policy(RUN).act(obs)` on 1,000 observations of the env (discrete: equal;
continuous: within 1e-5), with the observation normaliser inside the graph; every action kind
(with offsets, bounds, ELU and float64 observations) on hand-made policies; the README's
example runs without torch and plays the episode `python -m trpo eval` plays."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from gymnasium import spaces

from tests.conftest import tiny_config
from trpo.cli import main
from trpo.envs import make_env, space_info
from trpo.evaluate import LoadedPolicy, evaluate, load_policy
from trpo.export.onnx_policy import onnx_model
from trpo.normalization import ObservationNormalizer
from trpo.policies import make_policy
from trpo.session import TrainingSession
from trpo.store import RunStore

pytestmark = pytest.mark.slow  # training runs and torch's ONNX exporter (seconds each)

ROOT = Path(__file__).resolve().parent.parent
# name -> (env id, extra knobs): discrete and continuous, each with a normaliser too
RUNS = {
    "cartpole": ("CartPole-v1", {}),
    "pendulum": ("Pendulum-v1", {}),
    "cartpole-normalised": ("CartPole-v1", {"normalize_observations": True}),
    "pendulum-normalised": ("Pendulum-v1", {"normalize_observations": True}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One small finished run per RUNS entry (4 iterations, so the normaliser has moved)."""
    store = RunStore(tmp_path_factory.mktemp("onnx-runs"))
    folders = {}
    for name, (env_id, knobs) in RUNS.items():
        session = TrainingSession.new(tiny_config(env_id, total_steps=2048, **knobs), store)
        assert session.run() == "finished"
        folders[name] = session.run_folder.path
    return folders


def env_observations(env_id: str, n: int = 1000, seed: int = 3) -> np.ndarray:
    """n observations [n, obs_dim] met by playing the env with uniformly random actions."""
    env, _ = make_env(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    seen = []
    while len(seen) < n:
        seen.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return np.stack(seen)


def export(run: Path, out: Path, capsys) -> Path:
    code = main(["export", str(run), "--format", "onnx", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert f"wrote {out}" in capsys.readouterr().out
    return out


@pytest.mark.parametrize("name", list(RUNS))
def test_onnx_runtime_gives_the_actions_of_load_policy(name, runs, tmp_path, capsys):
    env_id, knobs = RUNS[name]
    model = export(runs[name], tmp_path / "policy.onnx", capsys)
    loaded = load_policy(runs[name])
    obs = env_observations(env_id)
    assert obs.dtype == np.float32 and obs.shape == (1000, loaded.space.obs_dim)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (got,) = session.run(["action"], {"obs": obs})
    actor = loaded.policy.numpy_actor()
    expected = np.stack([loaded.act(o, actor) for o in obs])
    assert got.shape == expected.shape
    if loaded.space.discrete:
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected)
        assert set(got.tolist()) == {0, 1}  # both actions: the comparison is not of constants
    else:
        assert got.dtype == np.float32  # the Box's dtype: what env.step takes
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert loaded.normalizer.enabled == bool(knobs)
    if loaded.normalizer.enabled:  # the normaliser is in the graph: without it, other actions
        stats = loaded.normalizer.stats
        assert np.abs(stats.mean).max() > 1e-3 and np.abs(stats.var - 1).max() > 1e-2
        raw = loaded.policy.numpy_actor().deterministic(obs.astype(np.float64))
        assert np.abs(loaded.space.env_action(raw) - got).max() > 1e-3
    meta = {p.key: p.value for p in ort_metadata(model)}
    assert meta["env_id"] == env_id and meta["run_id"] == runs[name].name
    assert meta["normalized_observations"] == str(bool(knobs)).lower()


def ort_metadata(model: Path) -> list:
    import onnx

    return list(onnx.load(str(model)).metadata_props)


def hand_made_policy(
    observation_space: spaces.Space, action_space: spaces.Space, seed: int
) -> LoadedPolicy:
    """A policy with ELU layers, an output layer scaled up (so actions spread and Box means
    leave their bounds) and normaliser statistics far from the identity."""
    space = space_info(observation_space, action_space)
    generator = torch.Generator().manual_seed(seed)
    policy = make_policy(space, (16, 16), "elu", -0.5, generator)
    with torch.no_grad():
        policy.net[-1].weight.mul_(300.0)
    rng = np.random.default_rng(seed)
    normalizer = ObservationNormalizer(space.obs_dim, enabled=True)
    normalizer.load(
        {
            "mean": rng.normal(0, 2, space.obs_dim),
            "var": rng.uniform(0.05, 20, space.obs_dim),
            "count": np.array([100.0]),
        }
    )
    config = tiny_config(activation="elu", hidden_sizes=(16, 16), normalize_observations=True)
    return LoadedPolicy(config, policy, normalizer, space, iteration=1)


BOX5 = spaces.Box(-np.inf, np.inf, (5,), np.float64)
KINDS = {
    "discrete with start": spaces.Discrete(4, start=-2),
    "box": spaces.Box(np.float32([-1.0, -0.5, 0.0]), np.float32([1.0, 2.0, 0.25])),
    "multi-discrete with start": spaces.MultiDiscrete([3, 2, 4], start=[1, 0, -2]),
    "multi-binary": spaces.MultiBinary(4),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_action_kind_matches_act_on_float64_observations(kind):
    action_space = KINDS[kind]
    loaded = hand_made_policy(BOX5, action_space, seed=len(kind))
    model = onnx_model(loaded, np.dtype(np.float64), action_space.dtype)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(double)"
    obs = np.random.default_rng(7).normal(0, 4, (1000, 5))
    (got,) = session.run(["action"], {"obs": obs})
    actor = loaded.policy.numpy_actor()
    expected = np.stack([loaded.act(o, actor) for o in obs])
    assert got.shape == expected.shape
    if kind == "box":
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
        low, high = action_space.low, action_space.high
        assert (got == low).any() and (got == high).any()  # the clip is exercised
        assert ((got > low) & (got < high)).any()
    else:
        np.testing.assert_array_equal(got, expected)
        assert len({tuple(np.atleast_1d(a)) for a in got}) > 3  # actions do vary
    assert all(action_space.contains(a.astype(action_space.dtype)) for a in got[:50])


def readme_example() -> str:
    """The Python block of the README's "Take the policy away" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Take the policy away", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs_without_torch_and_plays_evals_episode(runs, tmp_path, capsys):
    export(runs["cartpole"], tmp_path / "policy.onnx", capsys)
    blocked = "import sys\nsys.modules['torch'] = None  # any import of torch fails\n"
    result = subprocess.run(
        [sys.executable, "-c", blocked + readme_example()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    shown = float(re.fullmatch(r"return (\S+)\n", result.stdout).group(1))
    assert shown == evaluate(runs["cartpole"], episodes=1, seed=10_000).returns[0]
