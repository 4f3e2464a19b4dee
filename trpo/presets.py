"""Per-environment presets: rl-baselines3-zoo's tuned TRPO hyperparameters as TRPOConfigs."""

from __future__ import annotations

from typing import Any

from trpo.config import ConfigError, TRPOConfig

# --- presets -----------------------------------------------------------------------------
# rl-baselines3-zoo's hyperparams/trpo.yml (rl-zoo3 2.9), mapped to our knobs:
#   n_steps (per env) * n_envs -> steps_per_iteration, batch_size -> vf_minibatch,
#   n_critic_updates -> vf_epochs, learning_rate -> vf_lr, cg_max_steps -> cg_iters,
#   target_kl -> delta, normalize -> normalize_observations + normalize_rewards,
#   n_timesteps -> total_steps; what an entry leaves out is sb3-contrib TRPO's default.
# The MuJoCo -v5 presets use the zoo's -v4 entries (the zoo has no -v5 TRPO entry).
# Not mapped: use_sde (gSDE, Pendulum and MountainCarContinuous); our Gaussian policy has a
# state-independent log std. tests/test_config.py checks every zoo preset against the
# installed rl-zoo3.
#
# Box action spaces: sb3-contrib's TRPO (2.9) averages its Gaussian KL over the batch *and the
# action dimensions* (`kl_divergence(...).mean()` on a [batch, act_dim] tensor), so its
# target_kl limits the KL per action dimension and its Hessian is H / act_dim. Solving
# (H / d + lambda I) x = g and stepping to KL / d = target_kl is exactly our step with
# delta = d * target_kl and cg_damping = d * lambda (measured on one HalfCheetah batch: the
# same update to 1e-6). The Box presets are translated that way (`_per_dimension_kl`), so that
# delta here is the true mean KL(pi_old || pi_new) and the step is the zoo's tuned step.
# Without it HalfCheetah-v5 took steps 6x smaller in KL and learned 0.43x as well at 100k.

#: Action dimensions of the Box-action preset envs (tests check them against Gymnasium).
ACTION_DIMS: dict[str, int] = {
    "Pendulum-v1": 1,
    "MountainCarContinuous-v0": 1,
    "LunarLanderContinuous-v3": 2,
    "BipedalWalker-v3": 4,
    "BipedalWalkerHardcore-v3": 4,
    "Ant-v5": 8,
    "HalfCheetah-v5": 6,
    "Hopper-v5": 3,
    "Walker2d-v5": 6,
    "Humanoid-v5": 17,
    "Swimmer-v5": 2,
    "InvertedPendulum-v5": 1,
    "InvertedDoublePendulum-v5": 1,
    "Reacher-v5": 2,
    "Pusher-v5": 7,
}
SB3_TARGET_KL = 0.01  # sb3-contrib TRPO's defaults, used where a zoo entry states none
SB3_CG_DAMPING = 0.1


def _per_dimension_kl(env_id: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Translate a zoo entry's per-dimension target_kl and cg_damping to the true mean KL."""
    d = ACTION_DIMS.get(env_id, 1)
    return {
        **settings,
        "delta": round(d * settings.get("delta", SB3_TARGET_KL), 12),
        "cg_damping": round(d * settings.get("cg_damping", SB3_CG_DAMPING), 12),
    }


# the zoo's `pybullet-defaults` / `mujoco-defaults` anchor
_MUJOCO_ZOO: dict[str, Any] = dict(
    n_envs=2,
    total_steps=1_000_000,
    steps_per_iteration=2048,
    vf_minibatch=128,
    gamma=0.99,
    gae_lambda=0.95,
    cg_iters=25,
    cg_damping=0.1,
    vf_epochs=20,
    vf_lr=1e-3,
    normalize_observations=True,
    normalize_rewards=True,
)
_NORMALIZE = dict(normalize_observations=True, normalize_rewards=True)
_ZOO: dict[str, dict[str, Any]] = {
    # classic control
    "CartPole-v1": dict(
        n_envs=2,
        total_steps=100_000,
        steps_per_iteration=1024,
        vf_minibatch=512,
        cg_damping=1e-3,
        gae_lambda=0.98,
        gamma=0.99,
        vf_lr=1e-3,
        vf_epochs=20,
    ),
    "Pendulum-v1": dict(
        n_envs=2, total_steps=100_000, steps_per_iteration=2048, gamma=0.9, vf_epochs=15
    ),
    "Acrobot-v1": dict(n_envs=2, total_steps=100_000, steps_per_iteration=2048, **_NORMALIZE),
    "MountainCar-v0": dict(
        n_envs=2, total_steps=100_000, steps_per_iteration=2048, vf_epochs=20, **_NORMALIZE
    ),
    "MountainCarContinuous-v0": dict(
        n_envs=2, total_steps=50_000, steps_per_iteration=4096, **_NORMALIZE
    ),
    # Box2D
    "LunarLander-v3": dict(
        n_envs=2,
        total_steps=200_000,
        steps_per_iteration=1024,
        cg_damping=0.01,
        gae_lambda=0.98,
        gamma=0.99,
        vf_lr=1e-3,
        vf_epochs=15,
    ),
    "LunarLanderContinuous-v3": dict(
        n_envs=2, total_steps=100_000, steps_per_iteration=2048, vf_epochs=20, **_NORMALIZE
    ),
    "BipedalWalker-v3": dict(_MUJOCO_ZOO),
    "BipedalWalkerHardcore-v3": {**_MUJOCO_ZOO, "total_steps": 10_000_000},
    # MuJoCo: the zoo's shared MuJoCo settings, with each entry's own changes
    "Ant-v5": dict(_MUJOCO_ZOO),
    "HalfCheetah-v5": {**_MUJOCO_ZOO, "delta": 0.04},
    "Hopper-v5": dict(_MUJOCO_ZOO),
    "Walker2d-v5": dict(_MUJOCO_ZOO),
    "Humanoid-v5": {**_MUJOCO_ZOO, "total_steps": 2_000_000},
    "Swimmer-v5": {**_MUJOCO_ZOO, "gamma": 0.9999},
    # No zoo entry: the zoo's MuJoCo defaults above, documented as such (not tuned here).
    "InvertedPendulum-v5": dict(_MUJOCO_ZOO),
    "InvertedDoublePendulum-v5": dict(_MUJOCO_ZOO),
    "Reacher-v5": dict(_MUJOCO_ZOO),
    "Pusher-v5": dict(_MUJOCO_ZOO),
}
#: Every preset: the zoo's values, with Box envs' KL limit and damping made per-policy.
PRESETS: dict[str, dict[str, Any]] = {
    env_id: _per_dimension_kl(env_id, settings) for env_id, settings in _ZOO.items()
}
#: Presets with no rl-zoo entry, and where their values come from.
PRESET_SOURCES: dict[str, str] = {
    env: "rl-zoo's MuJoCo defaults (no zoo entry for this env)"
    for env in ("InvertedPendulum-v5", "InvertedDoublePendulum-v5", "Reacher-v5", "Pusher-v5")
}


def preset(preset_env: str, /, **overrides: Any) -> TRPOConfig:
    """The zoo-matched config for preset_env, with overrides (env_id included) on top."""
    if preset_env not in PRESETS:
        raise ConfigError(
            [f"no preset for {preset_env!r}; presets exist for: {', '.join(sorted(PRESETS))}"]
        )
    return TRPOConfig(**{"env_id": preset_env, **PRESETS[preset_env], **overrides})
