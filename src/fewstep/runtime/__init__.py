"""Torch-free runtime for fewstep bundles: tokenizers + numpy sampler + the target's session.

Nothing under `fewstep.runtime` may import torch, diffusers or transformers: a bundle must
run where only the target's runtime (OpenVINO, ONNX Runtime, ...) is installed.
"""

from fewstep.runtime.bundle import Bundle, BundleError, is_bundle
from fewstep.runtime.noise import initial_noise

__all__ = ["Bundle", "BundleError", "initial_noise", "is_bundle"]
