"""fewstep: few-step distillation and verified deployment of rectified-flow text-to-image models."""

__version__ = "0.1.0"
