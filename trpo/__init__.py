"""TRPO Workbench: Trust Region Policy Optimization, instrumented for inspection.

Names are loaded on first use so that `import trpo.config` stays light (no torch, no pandas).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "PRESETS": "trpo.presets",
    "ConfigError": "trpo.config",
    "TRPOConfig": "trpo.config",
    "preset": "trpo.presets",
    "IterationRecord": "trpo.record",
    "load_metrics": "trpo.store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trpo' has no attribute {name!r}")
