"""TRPO Workbench: Trust Region Policy Optimization, instrumented for inspection."""

from trpo.config import PRESETS, ConfigError, TRPOConfig, preset
from trpo.record import IterationRecord

__all__ = ["PRESETS", "ConfigError", "IterationRecord", "TRPOConfig", "preset"]
