"""The one checkpoint type: what a trainer saves and resumes from, and what the run store reads
and writes (as one safetensors file: the tensors, with `meta` as JSON in its metadata)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Checkpoint:
    """Named tensors (networks, optimiser moments, normaliser statistics) and JSON-able meta
    (config, counters, RNG states). digest: SHA-256 of the stored metadata, set when the store
    reads a checkpoint; it tells two checkpoints apart whatever their file's stat."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    digest: str = ""
