"""Model families behind one seam (see `base.py`)."""

from fewstep.families.base import CaptionedBatch, DataSource, Evaluation, Family
from fewstep.families.registry import (
    data_family,
    families,
    family_for,
    family_named,
    open_source,
    register_family,
    resolve_prefixed,
)

__all__ = [
    "CaptionedBatch",
    "DataSource",
    "Evaluation",
    "Family",
    "data_family",
    "families",
    "family_for",
    "family_named",
    "open_source",
    "register_family",
    "resolve_prefixed",
]
