"""Snapshots of a vector env's episode state as plain JSON, for exact resume (no pickle).

A checkpoint taken mid-episode can only continue the very same trajectory if the environments
come back exactly as they were. For the envs whose whole state is plain data this module
captures it: the wrappers' counters (TimeLimit's elapsed steps), every numeric attribute of the
unwrapped env (classic control keeps its state in such attributes), its random generator, and
for MuJoCo envs the physics integration state (mj_getState). Envs holding state in other objects
(Box2D worlds, async worker processes) are not captured: `capture` returns None and a resume
then restarts their episodes instead.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

WRAPPER_FIELDS = ("_elapsed_steps", "_has_reset")
# attributes that are constant or only used for rendering, whatever their type
_HARMLESS_TYPES: tuple[type, ...] = (gym.Space, EnvSpec, dict, str)
_HARMLESS_NAMES = {
    "mujoco_renderer",
    "model",
    "data",
    "screen",
    "clock",
    "viewer",
    "_np_random",
    "_ezpickle_args",
    "_ezpickle_kwargs",
}


class _Unsupported(Exception):
    pass


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise _Unsupported
        return {
            "__array__": value.dtype.str,
            "shape": list(value.shape),
            "data": value.reshape(-1).tolist(),
        }
    if isinstance(value, np.generic):
        return {"__scalar__": value.dtype.str, "value": value.item()}
    if isinstance(value, (tuple, list)):
        return {"__seq__": type(value).__name__, "items": [_encode(v) for v in value]}
    raise _Unsupported


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "__array__" in value:
            return np.array(value["data"], dtype=np.dtype(value["__array__"])).reshape(
                value["shape"]
            )
        if "__scalar__" in value:
            return np.dtype(value["__scalar__"]).type(value["value"])
        if "__seq__" in value:
            items = [_decode(v) for v in value["items"]]
            return tuple(items) if value["__seq__"] == "tuple" else items
    return value


def _is_mujoco(env: Any) -> bool:
    return type(getattr(env, "data", None)).__name__ == "MjData" and hasattr(env, "model")


def capture_env(env: gym.Env) -> dict[str, Any] | None:
    """The state of one (wrapped) env as JSON-able data, or None if it cannot be captured."""
    wrappers = []
    inner: Any = env
    while isinstance(inner, gym.Wrapper):
        wrappers.append({k: getattr(inner, k) for k in WRAPPER_FIELDS if hasattr(inner, k)})
        inner = inner.env
    attrs: dict[str, Any] = {}
    for name, value in vars(inner).items():
        if name.startswith("__") or name in _HARMLESS_NAMES:
            continue
        try:
            attrs[name] = _encode(value)
        except _Unsupported:
            if isinstance(value, _HARMLESS_TYPES):
                continue
            return None
    rng = getattr(inner, "_np_random", None)
    state: dict[str, Any] = {
        "wrappers": wrappers,
        "attrs": attrs,
        "rng": None
        if rng is None
        else {"bit_generator": type(rng.bit_generator).__name__, "state": rng.bit_generator.state},
    }
    if _is_mujoco(inner):
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(inner.model, spec))
        mujoco.mj_getState(inner.model, inner.data, physics, spec)
        state["mujoco"] = physics.tolist()
    elif getattr(inner, "data", None) is not None and not isinstance(
        inner.data, (np.ndarray, int, float)
    ):
        return None
    return state


def restore_env(env: gym.Env, state: dict[str, Any]) -> None:
    """Put an env (already reset once) back into a captured state."""
    inner: Any = env
    wrappers = iter(state["wrappers"])
    while isinstance(inner, gym.Wrapper):
        for name, value in next(wrappers, {}).items():
            setattr(inner, name, value)
        inner = inner.env
    for name, value in state["attrs"].items():
        setattr(inner, name, _decode(value))
    if state["rng"] is not None:
        bit_generator = getattr(np.random, state["rng"]["bit_generator"])()
        bit_generator.state = state["rng"]["state"]
        inner._np_random = np.random.Generator(bit_generator)
    if "mujoco" in state:
        import mujoco

        physics = np.asarray(state["mujoco"], dtype=np.float64)
        mujoco.mj_setState(inner.model, inner.data, physics, mujoco.mjtState.mjSTATE_INTEGRATION)


def capture(envs: gym.vector.VectorEnv) -> list[dict[str, Any]] | None:
    """Every sub-env of a sync vector env, or None when any cannot be captured."""
    if not isinstance(envs, gym.vector.SyncVectorEnv):
        return None
    states = [capture_env(env) for env in envs.envs]
    return None if any(s is None for s in states) else states  # type: ignore[return-value]


def restore(envs: gym.vector.VectorEnv, states: list[dict[str, Any]]) -> None:
    if not isinstance(envs, gym.vector.SyncVectorEnv) or len(states) != len(envs.envs):
        raise ValueError("env state does not match this vector env")
    for env, state in zip(envs.envs, states, strict=True):
        restore_env(env, state)
