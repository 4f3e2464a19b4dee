"""TRPOConfig validation, serialisation and the rl-zoo3-matched presets."""

import dataclasses
import inspect
import json
import os

import pytest
import yaml

from trpo.config import MAX_BACKTRACKS_CAP, ConfigError, TRPOConfig
from trpo.presets import ACTION_DIMS, PRESET_SOURCES, PRESETS, preset


def _problems(**changes):
    with pytest.raises(ConfigError) as info:
        TRPOConfig(**changes)
    assert info.value.problems, "a ConfigError must list at least one problem"
    assert str(info.value) == "; ".join(info.value.problems)
    return info.value.problems


def test_defaults_are_valid():
    config = TRPOConfig()
    assert config.env_id == "CartPole-v1"
    assert config.steps_per_iteration % config.n_envs == 0
    assert config.steps_per_env * config.n_envs == config.steps_per_iteration
    assert isinstance(config.hidden_sizes, tuple)


def test_a_bad_config_reaches_value_error_handlers_with_every_problem():
    """Callers that catch ValueError (the CLI's option parsers, the Train form, run checks)
    get a bad config's ConfigError, whose message lists each problem."""
    with pytest.raises(ValueError, match="delta") as info:
        TRPOConfig(delta=-1.0, alpha=2.0)
    assert isinstance(info.value, ConfigError)
    assert len(info.value.problems) == 2
    assert str(info.value) == "; ".join(info.value.problems)
    assert any("alpha" in problem for problem in info.value.problems)


@pytest.mark.parametrize(
    ("changes", "knob"),
    [
        ({"delta": 0.0}, "delta"),
        ({"delta": -0.01}, "delta"),
        ({"delta": float("nan")}, "delta"),
        ({"delta": float("inf")}, "delta"),
        ({"delta": True}, "delta"),
        ({"delta": "0.01"}, "delta"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"max_backtracks": 0}, "max_backtracks"),
        ({"max_backtracks": 2.5}, "max_backtracks"),
        ({"max_backtracks": MAX_BACKTRACKS_CAP + 1}, "max_backtracks"),
        ({"max_backtracks": True}, "max_backtracks"),
        ({"n_envs": 4, "steps_per_iteration": 1026}, "steps_per_iteration"),
        ({"n_envs": 4, "steps_per_iteration": 4}, "steps_per_iteration"),
        ({"n_envs": 4, "steps_per_iteration": 6}, "steps_per_iteration"),
        ({"steps_per_iteration": 2048, "total_steps": 2047}, "total_steps"),
        ({"env_id": "markermod:Thing-v0"}, "env_id"),
        ({"env_id": ""}, "env_id"),
        ({"activation": "sigmoid"}, "activation"),
        ({"hidden_sizes": ()}, "hidden_sizes"),
        ({"hidden_sizes": (64, 0)}, "hidden_sizes"),
        ({"hidden_sizes": (64, 2.5)}, "hidden_sizes"),
        ({"hidden_sizes": (True,)}, "hidden_sizes"),
        ({"hidden_sizes": "64,64"}, "hidden_sizes"),
        ({"hidden_sizes": (8,) * 9}, "hidden_sizes"),
        ({"gamma": 1.01}, "gamma"),
        ({"gamma": 0.0}, "gamma"),
        ({"gae_lambda": -0.1}, "gae_lambda"),
        ({"gae_lambda": 1.5}, "gae_lambda"),
        ({"gae_lambda": float("nan")}, "gae_lambda"),
        ({"cg_iters": 0}, "cg_iters"),
        ({"cg_damping": -1.0}, "cg_damping"),
        ({"vf_lr": 0.0}, "vf_lr"),
        ({"n_envs": 0}, "n_envs"),
        ({"vectorization": "threads"}, "vectorization"),
        ({"normalize_observations": 1}, "normalize_observations"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_value_raises_naming_the_knob(changes, knob):
    problems = _problems(**changes)
    assert len(problems) == 1, problems
    assert knob in problems[0]


def test_steps_per_iteration_messages_say_what_is_wrong():
    (multiple,) = _problems(n_envs=4, steps_per_iteration=1026)
    assert "multiple" in multiple and "n_envs" in multiple
    (small,) = _problems(n_envs=4, steps_per_iteration=6)
    assert "at least" in small and "8" in small


def test_edge_values_are_accepted_and_kept():
    edges = dict(delta=1.0, gamma=1.0, gae_lambda=0.0, max_backtracks=MAX_BACKTRACKS_CAP)
    config = TRPOConfig(**edges)
    assert {k: getattr(config, k) for k in edges} == edges
    smallest = dict(gae_lambda=1.0, n_envs=4, steps_per_iteration=8, total_steps=8)
    config = TRPOConfig(**smallest)
    assert {k: getattr(config, k) for k in smallest} == smallest
    assert config.steps_per_env == 2
    config = TRPOConfig(hidden_sizes=[32])  # a list from JSON becomes a tuple
    assert config.hidden_sizes == (32,) and isinstance(config.hidden_sizes, tuple)


def test_several_problems_are_all_listed():
    problems = _problems(delta=-1.0, alpha=2.0, activation="swish", gamma=5.0, max_backtracks=0)
    assert len(problems) == 5
    text = " | ".join(problems)
    for knob in ("delta", "alpha", "activation", "gamma", "max_backtracks"):
        assert knob in text


def test_json_round_trip():
    config = TRPOConfig(
        env_id="Pendulum-v1",
        hidden_sizes=(32, 16, 8),
        delta=0.02,
        normalize_observations=True,
        seed=17,
    )
    text = config.to_json()
    assert json.loads(text)["hidden_sizes"] == [32, 16, 8]
    again = TRPOConfig.from_json(text)
    assert again == config
    assert again.hidden_sizes == (32, 16, 8) and isinstance(again.hidden_sizes, tuple)
    assert {f.name for f in dataclasses.fields(TRPOConfig)} == set(json.loads(text))


def test_from_dict_refuses_unknown_keys_and_non_dicts():
    with pytest.raises(ConfigError, match="deltta"):
        TRPOConfig.from_dict({"deltta": 0.01})
    for bad in ([1, 2], "CartPole-v1", None, 3):
        with pytest.raises(ConfigError, match="JSON object"):
            TRPOConfig.from_dict(bad)


def test_from_json_refuses_invalid_json():
    with pytest.raises(ConfigError, match="not valid JSON"):
        TRPOConfig.from_json("{delta: 0.01")
    with pytest.raises(ConfigError, match="JSON object"):
        TRPOConfig.from_json("[1, 2]")


def test_from_json_validates_values():
    with pytest.raises(ConfigError, match="delta"):
        TRPOConfig.from_json('{"delta": -1}')


def test_unknown_preset_is_refused():
    with pytest.raises(ConfigError, match="no preset"):
        preset("NoSuchEnv-v0")


# --- presets against rl-baselines3-zoo --------------------------------------------------------

SB3_CONTRIB_TRPO_DEFAULTS = {
    "n_steps": 2048,
    "batch_size": 128,
    "n_critic_updates": 10,
    "learning_rate": 1e-3,
    "cg_max_steps": 15,
    "cg_damping": 0.1,
    "gae_lambda": 0.95,
    "gamma": 0.99,
    "target_kl": 0.01,
}
MUJOCO = ("Ant", "HalfCheetah", "Hopper", "Walker2d", "Humanoid", "Swimmer")
ZOO_NAME = {f"{name}-v5": f"{name}-v4" for name in MUJOCO}  # the zoo's -v4 entries serve -v5


def _zoo_trpo_hyperparams():
    rl_zoo3 = pytest.importorskip("rl_zoo3")
    path = os.path.join(os.path.dirname(rl_zoo3.__file__), "hyperparams", "trpo.yml")
    with open(path) as f:
        return yaml.load(f, Loader=yaml.SafeLoader)  # handles !!float and << merge keys


def _expected_from_zoo(entry, act_dim=1):
    """Our knobs for a zoo entry; act_dim turns sb3's per-dimension KL into the true mean KL."""

    def get(key):
        return entry.get(key, SB3_CONTRIB_TRPO_DEFAULTS[key])

    normalize = bool(entry.get("normalize", False))
    return {
        "steps_per_iteration": int(get("n_steps")) * int(entry["n_envs"]),
        "n_envs": int(entry["n_envs"]),
        "total_steps": int(float(entry["n_timesteps"])),
        "vf_minibatch": int(get("batch_size")),
        "vf_epochs": int(get("n_critic_updates")),
        "vf_lr": float(get("learning_rate")),
        "cg_iters": int(get("cg_max_steps")),
        "cg_damping": act_dim * float(get("cg_damping")),
        "gae_lambda": float(get("gae_lambda")),
        "gamma": float(get("gamma")),
        "delta": act_dim * float(get("target_kl")),
        "normalize_observations": normalize,
        "normalize_rewards": normalize,
    }


@pytest.mark.parametrize("env_id", sorted(set(PRESETS) - set(PRESET_SOURCES)))
def test_preset_is_valid_and_matches_rl_zoo(env_id):
    zoo = _zoo_trpo_hyperparams()
    config = preset(env_id)
    assert config.env_id == env_id
    entry = zoo[ZOO_NAME.get(env_id, env_id)]
    expected = _expected_from_zoo(entry, ACTION_DIMS.get(env_id, 1))
    actual = {key: getattr(config, key) for key in expected}
    assert actual == pytest.approx(expected), env_id
    # Overrides apply on top of the preset.
    assert preset(env_id, seed=3, delta=0.02).delta == 0.02


def test_every_zoo_env_that_gymnasium_registers_has_a_preset():
    import gymnasium as gym

    zoo = _zoo_trpo_hyperparams()
    to_ours = {v: k for k, v in ZOO_NAME.items()}
    registered = {
        to_ours.get(name, name) for name in zoo if to_ours.get(name, name) in gym.registry
    }
    assert "HalfCheetah-v5" in registered and "LunarLander-v3" in registered
    assert registered - set(PRESETS) == set()


def test_presets_without_a_zoo_entry_use_the_zoo_mujoco_defaults():
    zoo = _zoo_trpo_hyperparams()
    for env_id in PRESET_SOURCES:
        assert env_id not in ZOO_NAME and env_id not in zoo
        expected = _expected_from_zoo(zoo["Hopper-v4"], ACTION_DIMS[env_id])  # mujoco-defaults
        config = preset(env_id)
        assert {key: getattr(config, key) for key in expected} == pytest.approx(expected)


@pytest.mark.parametrize("env_id", sorted(PRESETS))
def test_action_dims_of_the_presets_are_the_envs_own(env_id):
    import gymnasium as gym

    env = gym.make(env_id)
    try:
        space = env.action_space
        if isinstance(space, gym.spaces.Box):
            assert ACTION_DIMS[env_id] == space.shape[0]
        else:
            assert env_id not in ACTION_DIMS  # categorical KL is already the true mean KL
    finally:
        env.close()


def test_sb3_contrib_averages_its_gaussian_kl_over_action_dimensions():
    """Why Box presets scale target_kl and cg_damping by act_dim: sb3's KL is per dimension."""
    import torch
    from stable_baselines3.common.distributions import DiagGaussianDistribution, kl_divergence

    from trpo.policies import GaussianPolicy

    mean0, mean1 = torch.zeros(5, 6), torch.full((5, 6), 0.3)
    log_std = torch.zeros(6)
    old = DiagGaussianDistribution(6).proba_distribution(mean0, log_std)
    new = DiagGaussianDistribution(6).proba_distribution(mean1, log_std)
    sb3_kl = float(kl_divergence(new, old).mean())  # as sb3_contrib.TRPO.train computes it
    true_kl = float(
        GaussianPolicy.kl(None, (mean0, log_std.expand(5, 6)), (mean1, log_std.expand(5, 6))).mean()
    )
    assert true_kl == pytest.approx(6 * sb3_kl)
    assert true_kl == pytest.approx(6 * 0.5 * 0.3**2)


def test_zoo_yaml_merge_keys_were_resolved():
    zoo = _zoo_trpo_hyperparams()
    # HalfCheetah-v4 only states target_kl; the rest comes from two levels of << merges.
    assert zoo["HalfCheetah-v4"]["target_kl"] == 0.04
    assert zoo["HalfCheetah-v4"]["cg_max_steps"] == 25
    assert zoo["HalfCheetah-v4"]["n_timesteps"] == 1e6


def test_sb3_contrib_defaults_used_above_are_the_real_ones():
    sb3_contrib = pytest.importorskip("sb3_contrib")
    signature = inspect.signature(sb3_contrib.TRPO.__init__)
    for key, value in SB3_CONTRIB_TRPO_DEFAULTS.items():
        assert signature.parameters[key].default == value, key
    # Our own defaults follow the same library where they overlap.
    config = TRPOConfig()
    assert config.vf_minibatch == 128 and config.vf_epochs == 10 and config.cg_iters == 15
    assert config.alpha == signature.parameters["line_search_shrinking_factor"].default
