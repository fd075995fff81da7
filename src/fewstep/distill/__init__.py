"""SD3.5-Flash distillation: trajectory guidance and distribution matching (timestep sharing)."""

from fewstep.distill.api import distill, student_info
from fewstep.distill.config import DistributionMatching, FlashConfig, TrajectoryGuidance

__all__ = ["DistributionMatching", "FlashConfig", "TrajectoryGuidance", "distill", "student_info"]
