"""Which registered Gymnasium environments this install can train, grouped for pickers.

An id is listed only if it passes the same checks as training: `trpo.envs.make_env` creates it
(so optional dependencies such as Box2D or MuJoCo are really installed) and its spaces are ones
the trainer supports (flat Box observations, or Dict and Tuple observations it flattens;
Discrete, MultiDiscrete, MultiBinary or 1-D Box actions). Per environment name
only the newest working version is kept (Hopper-v5, not Hopper-v4). Namespaced jax ports
(phys2d/, tabular/) and registry entries that are not plain environment classes (the shimmy
compatibility wrappers, mujoco-py stubs) are skipped without being created.
"""

from __future__ import annotations

import contextlib
import logging
import time
from functools import lru_cache

import gymnasium as gym

from trpo.envs import make_env

GROUPS = ("Classic control", "MuJoCo", "Box2D", "Other")
_GROUP_MODULES = {
    "gymnasium.envs.classic_control": "Classic control",
    "gymnasium.envs.mujoco": "MuJoCo",
    "gymnasium.envs.box2d": "Box2D",
}
# Entry-point modules that need jax, and ids that are wrappers or test fixtures.
_SKIP_MODULES = ("gymnasium.envs.phys2d", "gymnasium.envs.tabular", "gymnasium.envs.functional")
_SKIP_NAMES = ("GymV21Environment", "GymV26Environment")

log = logging.getLogger(__name__)

# Seconds the last uncached scan took (creating every candidate env once).
last_scan_seconds: float | None = None


def group_of(entry_point: str) -> str:
    """'Classic control', 'MuJoCo', 'Box2D' or 'Other' for a spec's entry_point string."""
    module = entry_point.split(":", 1)[0]
    for prefix, group in _GROUP_MODULES.items():
        if module == prefix or module.startswith(prefix + "."):
            return group
    return "Other"


def _candidates() -> dict[tuple[str | None, str], list[gym.envs.registration.EnvSpec]]:
    """Registry specs worth trying, per (namespace, name), newest version first."""
    by_name: dict[tuple[str | None, str], list[gym.envs.registration.EnvSpec]] = {}
    for env_id, spec in gym.registry.items():
        entry = spec.entry_point
        if ":" in env_id or not isinstance(entry, str):
            continue  # callables are error stubs (mujoco-py, shimmy), not environments
        if spec.namespace is not None or entry.startswith(_SKIP_MODULES):
            continue
        if spec.name in _SKIP_NAMES:
            continue
        by_name.setdefault((spec.namespace, spec.name), []).append(spec)
    for specs in by_name.values():
        specs.sort(key=lambda s: -1 if s.version is None else s.version, reverse=True)
    return by_name


def _works(env_id: str) -> bool:
    try:
        env, _ = make_env(env_id)
    except Exception as exc:  # EnvError, or anything a broken optional env raises
        log.debug("catalog: skipping %s: %s", env_id, exc)
        return False
    with contextlib.suppress(Exception):
        env.close()
    return True


@lru_cache(maxsize=1)
def _scan() -> tuple[tuple[str, tuple[str, ...]], ...]:
    global last_scan_seconds
    started = time.perf_counter()
    groups: dict[str, list[str]] = {g: [] for g in GROUPS}
    for specs in _candidates().values():
        for spec in specs:  # newest first; an older version only if the newer ones fail
            if _works(spec.id):
                groups[group_of(spec.entry_point)].append(spec.id)
                break
    last_scan_seconds = time.perf_counter() - started
    log.info("catalog: scanned the Gymnasium registry in %.2f s", last_scan_seconds)
    return tuple((g, tuple(sorted(ids, key=str.lower))) for g, ids in groups.items() if ids)


def supported_envs() -> dict[str, list[str]]:
    """Group -> sorted env ids that this install can create and train (empty groups omitted).

    The scan creates each candidate env once (well under a second for the built-in ones) and is
    cached for the life of the process (functools.lru_cache); `clear_cache()` forgets it.
    """
    return {group: list(ids) for group, ids in _scan()}


def all_supported() -> list[str]:
    """Every supported id, in group order then alphabetically."""
    return [env_id for ids in supported_envs().values() for env_id in ids]


def group_for(env_id: str) -> str | None:
    """The group an id is listed under, or None if it is not supported here."""
    for group, ids in supported_envs().items():
        if env_id in ids:
            return group
    return None


@lru_cache(maxsize=128)
def describe(env_id: str) -> str:
    """One line on an env's spaces, e.g. '4 observations · 2 discrete actions', or the reason
    it cannot be used. Flattened Dict or Tuple observations say so, e.g.
    '7 observations (flattened from a Dict space) · 3 binary actions'."""
    try:
        env, info = make_env(env_id)
    except Exception as exc:
        return str(exc)
    with contextlib.suppress(Exception):
        env.close()
    plural = "s" if info.act_dim > 1 else ""
    if info.action_kind == "discrete":
        actions = f"{info.act_dim} discrete actions"
    elif info.action_kind == "multi_discrete":
        choices = ", ".join(str(n) for n in info.action_nvec)
        actions = f"{info.act_dim} discrete action component{plural} ({choices} choices)"
    elif info.action_kind == "multi_binary":
        actions = f"{info.act_dim} binary action{plural}"
    else:
        low, high = info.action_low, info.action_high
        same = low is not None and high is not None and len(set(low)) == 1 and len(set(high)) == 1
        bounds = f" in [{low[0]:g}, {high[0]:g}]" if same else ""
        actions = f"{info.act_dim}-D continuous action{plural}{bounds}"
    observations = f"{info.obs_dim} observations"
    if info.flattened_from is not None:
        observations += f" (flattened from a {info.flattened_from} space)"
    return f"{observations} · {actions}"


def clear_cache() -> None:
    """Forget the scan (the next `supported_envs()` creates the envs again)."""
    _scan.cache_clear()
    describe.cache_clear()
