"""SD3.5-Flash distillation: trajectory guidance and distribution matching (timestep sharing)."""

from fewstep.distill.config import DistributionMatching, FlashConfig, TrajectoryGuidance
from fewstep.distill.run import distill
from fewstep.student import student_info

__all__ = ["DistributionMatching", "FlashConfig", "TrajectoryGuidance", "distill", "student_info"]
