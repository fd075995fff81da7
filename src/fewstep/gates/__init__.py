"""Accuracy gates: tensor, image and distribution checks of a bundle against the torch model."""

from fewstep.gates.config import DistributionGates, GateConfig, GateResult, ImageGates, TensorGates

__all__ = ["DistributionGates", "GateConfig", "GateResult", "ImageGates", "TensorGates"]
