"""Quantization: typed scheme configs, calibration at the student's timesteps, and one
handler per backend (NNCF for OpenVINO, onnxruntime.quantization for ONNX Runtime)."""

from fewstep.quantize.config import Int8Config, MixedConfig, QuantConfig, WeightOnlyConfig, default_scheme
from fewstep.quantize.registry import quantize_model, register_quantizer

__all__ = [
    "Int8Config",
    "MixedConfig",
    "QuantConfig",
    "WeightOnlyConfig",
    "default_scheme",
    "quantize_model",
    "register_quantizer",
]


def load_handlers(backend: str) -> None:
    """Import the backend's handler module (registers its quantizers); its SDK loads lazily."""
    import importlib

    importlib.import_module(f"fewstep.quantize.{backend}")
