"""Deployment targets: the contract, the registry, and the built-in targets (one per file)."""

from fewstep.targets.base import ComponentIO, MissingExtraError, Session, Target, TensorSpec
from fewstep.targets.registry import discover, get_target, register_target, target_names

__all__ = [
    "ComponentIO",
    "MissingExtraError",
    "Session",
    "Target",
    "TensorSpec",
    "discover",
    "get_target",
    "register_target",
    "target_names",
]
