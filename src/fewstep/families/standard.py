"""Standard image metrics for families without a shipped evaluator (real SD3 / SD3.5 models).

The user points to the networks on their own disk; nothing is downloaded at run time:

- **FID** on the features of an ONNX feature network (InceptionV3 pool3 as the FID
  literature uses it: export torch-fidelity's `FeatureExtractorInceptionV3` or pytorch-fid's
  network to ONNX once, on any machine that has torchvision), against the images of a
  reference image folder (`metadata.jsonl`: `file_name`, `text`), whose captions are the
  held-out prompts. ONNX keeps the weights free of pickles and of torchvision, which does not
  import beside the CPU torch build here.
- **CLIP score** (Hessel et al. 2021: 100 * max(cos(image, text), 0), torchmetrics' definition)
  with a local transformers CLIP directory; `alignment` is the CLIP score / 100.
- **LPIPS** for the image gates: an ONNX network that takes two image batches and returns one
  distance per pair (export the `lpips` package's `LPIPS(net=...)` once).

Each network runs on the CPU with ONNX Runtime (feature and LPIPS networks) or torch (CLIP).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from fewstep.config import StrictModel
from fewstep.families.base import Evaluation, cycled_prompts, drawn_prompts


def _existing(path: Path | None, what: str) -> Path | None:
    if path is not None and not Path(path).exists():
        raise ValueError(f"{what}: {path} does not exist")
    return path


class StandardMetrics(StrictModel):
    """Where the standard metrics' networks and reference images are (all local paths)."""

    reference: Path = Field(
        description="image folder with metadata.jsonl (file_name, text): real images for FID, captions as prompts"
    )
    fid_network: Path | None = Field(
        None, description="ONNX feature network (e.g. InceptionV3 pool3): images -> features; null: no FID"
    )
    clip: Path | None = Field(None, description="local transformers CLIP directory for the CLIP score; null: none")
    resolution: int = Field(256, ge=8, le=4096, description="reference images are resized to this")

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: Path) -> Path:
        if not (Path(value) / "metadata.jsonl").exists():
            raise ValueError(f"reference: {value} has no metadata.jsonl (one JSON object per line: file_name, text)")
        return value

    @field_validator("fid_network")
    @classmethod
    def _fid_network(cls, value: Path | None) -> Path | None:
        return _existing(value, "fid_network")

    @field_validator("clip")
    @classmethod
    def _clip(cls, value: Path | None) -> Path | None:
        if value is not None and not (Path(value) / "config.json").exists():
            raise ValueError(f"clip: {value} is not a transformers CLIP directory (no config.json)")
        return value


def _onnx_session(path: Path):
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - the build extra brings it
        raise ImportError("standard metrics run ONNX networks: pip install 'fewstep[onnxruntime]'") from e
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """N,H,W,3 floats in [0, 1] resized (bicubic) to size = (H, W)."""
    if images.shape[1:3] == size:
        return images
    from PIL import Image

    out = []
    for im in images:
        pil = Image.fromarray(np.clip(np.rint(im * 255), 0, 255).astype(np.uint8))
        out.append(np.asarray(pil.resize((size[1], size[0]), Image.BICUBIC), np.float32) / 255.0)
    return np.stack(out)


def onnx_image_feed(session, images: np.ndarray, index: int = 0) -> np.ndarray:
    """N,H,W,3 floats in [0, 1] as the network's `index`-th input wants them: NCHW, uint8 in
    [0, 255] for a uint8 input, else float32 in [0, 1]; resized where the input's size is fixed."""
    spec = session.get_inputs()[index]
    h, w = spec.shape[2:4] if len(spec.shape) == 4 else (None, None)
    if isinstance(h, int) and isinstance(w, int):
        images = _resize(images, (h, w))
    x = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    if spec.type == "tensor(uint8)":
        return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
    return x.astype(np.float32)


class FeatureNetwork:
    """An ONNX network mapping images to one feature vector each."""

    def __init__(self, path: Path, batch: int = 50):
        self.session = _onnx_session(path)
        self.batch = batch

    def __call__(self, images: np.ndarray) -> np.ndarray:
        name = self.session.get_inputs()[0].name
        feats = [
            self.session.run(None, {name: onnx_image_feed(self.session, images[i : i + self.batch])})[0]
            for i in range(0, len(images), self.batch)
        ]
        out = np.concatenate(feats).astype(np.float64)
        return out.reshape(out.shape[0], -1)


class LpipsNetwork:
    """An ONNX network taking two image batches and giving one perceptual distance per pair."""

    def __init__(self, path: Path):
        self.session = _onnx_session(path)
        if len(self.session.get_inputs()) != 2:
            raise ValueError(f"{path}: an LPIPS network takes two image inputs")

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        names = [i.name for i in self.session.get_inputs()]
        feeds = {names[0]: onnx_image_feed(self.session, a, 0), names[1]: onnx_image_feed(self.session, b, 1)}
        return np.asarray(self.session.run(None, feeds)[0], np.float64).reshape(len(a), -1).mean(1)


class ClipScorer:
    """Per-image CLIP score, 100 * max(cos(image, text), 0), with a local transformers CLIP
    directory (safetensors only), loaded once. torchmetrics' `CLIPScore` computes the same number
    but only accepts hub names it knows, so the directory is loaded here with transformers itself."""

    def __init__(self, clip_dir: Path, batch: int = 32):
        from transformers import CLIPModel, CLIPProcessor

        self.model = CLIPModel.from_pretrained(str(clip_dir), local_files_only=True, use_safetensors=True).eval()
        self.processor = CLIPProcessor.from_pretrained(str(clip_dir), local_files_only=True)
        self.batch = batch

    def __call__(self, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        import torch

        length = self.model.config.text_config.max_position_embeddings
        pixels = np.clip(np.rint(images * 255), 0, 255).astype(np.uint8)
        scores = []
        with torch.no_grad():
            for i in range(0, len(images), self.batch):
                inputs = self.processor(
                    text=prompts[i : i + self.batch],
                    images=list(pixels[i : i + self.batch]),
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=length,
                )
                out = self.model(**inputs)
                img = out.image_embeds / out.image_embeds.norm(dim=-1, keepdim=True)
                txt = out.text_embeds / out.text_embeds.norm(dim=-1, keepdim=True)
                scores.append((100 * (img * txt).sum(-1)).clamp(min=0).numpy())
        return np.concatenate(scores).astype(np.float64)


class StandardEvaluation(Evaluation):
    """FID against a reference image folder and CLIP score, with the user's local networks."""

    def __init__(self, cfg: StandardMetrics):
        self.cfg = cfg

    @cached_property
    def _reference(self):
        from fewstep.families.sd3 import ImageFolderSource

        return ImageFolderSource(self.cfg.reference, self.cfg.resolution, split="all")

    @cached_property
    def _features(self) -> FeatureNetwork | None:
        return FeatureNetwork(self.cfg.fid_network) if self.cfg.fid_network else None

    @cached_property
    def _clip(self) -> ClipScorer | None:
        return ClipScorer(self.cfg.clip) if self.cfg.clip else None

    @cached_property
    def _reference_features(self) -> np.ndarray | None:
        return self._features(self._reference.images) if self._features else None

    def inputs(self) -> dict[str, Path]:
        named = {"reference": self.cfg.reference, "fid_network": self.cfg.fid_network, "clip": self.cfg.clip}
        return {k: Path(v) for k, v in named.items() if v is not None}

    def held_out(self, n: int) -> tuple[list[str], list[Any]]:
        return cycled_prompts(self._reference.captions, n)

    def training(self, n: int, seed: int) -> tuple[list[str], list[Any]]:
        return drawn_prompts(self._reference.captions, n, seed)

    def score(self, images: np.ndarray, specs: list[Any]) -> dict[str, Any]:
        from fewstep.families.frechet import frechet_distance

        out: dict[str, Any] = {"fid": float("nan"), "fid_real": float("nan"), "alignment": float("nan")}
        if self._features is not None:
            ref = self._reference_features
            out["fid"] = frechet_distance(self._features(images), ref)
            half = len(ref) // 2
            # the floor at this reference size: one half of the real images against the other
            out["fid_real"] = frechet_distance(ref[:half], ref[half:]) if half >= 2 else float("nan")
        if self._clip is not None:
            scores = self._clip(images, [str(s) for s in specs])
            out["clip_score"] = float(scores.mean())
            out["alignment"] = float(scores.mean() / 100.0)
        out["per_category"] = {}
        out["metrics"] = "standard"
        return out
