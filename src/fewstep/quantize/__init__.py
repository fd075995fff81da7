"""Quantization: typed scheme configs, calibration at the student's timesteps, and one
handler per backend (NNCF for OpenVINO, onnxruntime.quantization for ONNX Runtime)."""

from fewstep.quantize.config import Int8Config, MixedConfig, QuantConfig, WeightOnlyConfig, default_scheme
from fewstep.quantize.registry import load_handlers, quantize_model, register_quantizer

__all__ = [
    "Int8Config",
    "MixedConfig",
    "QuantConfig",
    "WeightOnlyConfig",
    "default_scheme",
    "load_handlers",
    "quantize_model",
    "register_quantizer",
]
