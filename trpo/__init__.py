"""TRPO Workbench: Trust Region Policy Optimization, instrumented for inspection."""

from trpo.config import PRESETS, ConfigError, TRPOConfig, preset
from trpo.record import IterationRecord
from trpo.store import load_metrics

__all__ = ["PRESETS", "ConfigError", "IterationRecord", "TRPOConfig", "load_metrics", "preset"]
