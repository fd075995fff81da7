"""NVIDIA Model Optimizer quantization of torch modules (the TensorRT path).

The module is fake-quantized with `modelopt.torch.quantization` over a forward loop on the
calibration inputs (the student's own trajectories), then exported with the TorchScript ONNX
exporter: INT8 gives standard QuantizeLinear/DequantizeLinear pairs that ONNX Runtime runs
too; FP8 and INT4 give TensorRT-only custom ops.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fewstep.quantize.config import Int8Config, ModelOptConfig
from fewstep.quantize.registry import register_quantizer

CONFIGS = {
    "int8": "INT8_DEFAULT_CFG",
    "int8-sq": "INT8_SMOOTHQUANT_CFG",
    "fp8": "FP8_DEFAULT_CFG",
    "int4-awq": "INT4_AWQ_CFG",
}


def modelopt_config(scheme: Any) -> dict:
    """The ModelOpt config dict for a fewstep scheme config."""
    if not isinstance(scheme, (Int8Config, ModelOptConfig)):
        raise ValueError(
            f"ModelOpt: no mapping for scheme {getattr(scheme, 'scheme', scheme)!r}; allowed: {', '.join(CONFIGS)}"
        )
    try:
        import modelopt.torch.quantization as mtq
    except ImportError as err:  # pragma: no cover - exercised where modelopt is missing
        raise ImportError("ModelOpt quantization needs: pip install nvidia-modelopt (without [onnx]/[hf])") from err
    return getattr(mtq, CONFIGS[scheme.scheme])


@register_quantizer("modelopt", Int8Config)
@register_quantizer("modelopt", ModelOptConfig)
def quantize_module(module: torch.nn.Module, io: Any, scheme: Any, items: list[dict[str, np.ndarray]], out: Any = None):
    """Fake-quantize the torch `module` in place, calibrated by running it on `items`; return it
    (the quantizer registry's handler for the `modelopt` backend: a module in, a module out)."""
    if isinstance(scheme, Int8Config) and scheme.attention == "int8":
        raise ValueError(
            "int8 attention: 'int8' is not available with ModelOpt (its INT8 config quantizes the "
            "linear and conv layers; attention stays float); allowed: float, auto"
        )
    input_names = [t.name for t in io.inputs]
    import modelopt.torch.quantization as mtq

    if not items:
        raise ValueError(f"ModelOpt {scheme.scheme}: calibration data is required")
    cfg = modelopt_config(scheme)

    def forward_loop(model: torch.nn.Module) -> None:
        with torch.no_grad():
            for feeds in items:
                model(*(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in input_names))

    return mtq.quantize(module, cfg, forward_loop=forward_loop)
