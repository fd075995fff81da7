"""Model families behind one seam (see `base.py`)."""

from pathlib import Path

from fewstep.families.base import CaptionedBatch, DataSource, Evaluation, Family
from fewstep.families.registry import (
    carry_family_files,
    data_family,
    families,
    family_for,
    family_named,
    open_source,
    register_family,
    resolve_prefixed,
)
from fewstep.families.standard import StandardEvaluation, StandardMetrics


def evaluation_with(
    family: Family, metrics: StandardMetrics | None = None, model_dir: Path | None = None
) -> Evaluation | None:
    """The standard metrics when the user configures them, else the family's own evaluation of
    `model_dir` (None: the family has none, and nothing may be scored)."""
    return StandardEvaluation(metrics) if metrics is not None else family.evaluation(model_dir)


__all__ = [
    "CaptionedBatch",
    "DataSource",
    "Evaluation",
    "Family",
    "StandardEvaluation",
    "StandardMetrics",
    "carry_family_files",
    "data_family",
    "evaluation_with",
    "families",
    "family_for",
    "family_named",
    "open_source",
    "register_family",
    "resolve_prefixed",
]
