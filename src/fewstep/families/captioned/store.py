"""A trained caption evaluator on disk: `model.safetensors` (the network), `reference.safetensors`
(features of the held-out real images and of as many training images: the FID reference and its
real-vs-real floor) and `config.json` (network shape, concept vocabulary, threshold, the held-out
and training captions, and its scores on real held-out images). Loaded with safetensors only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file, save_file

from fewstep.families.captioned.network import ConceptNet
from fewstep.families.captioned.vocab import concepts

EVALUATOR_DIR = "fewstep_evaluator"  # inside a pipeline directory
FORMAT = "fewstep-caption-evaluator"
FILES = ("config.json", "model.safetensors", "reference.safetensors")


@dataclass
class CaptionEvaluator:
    net: ConceptNet
    vocabulary: list[str]
    resolution: int
    held_out: list[str]  # captions of the held-out real images (the eval prompts)
    training: list[str]  # captions of the training split (calibration / ratio-choice prompts)
    reference: dict[str, np.ndarray]  # "held_out", "training": N x F features
    threshold: float = 0.5
    info: dict[str, Any] = field(default_factory=dict)  # data, training, calibration, scores on real images
    unchecked: list[str] = field(default_factory=list)  # concepts the network cannot see (calibration)
    thresholds: dict[str, float] = field(default_factory=dict)  # per concept (calibration); else `threshold`

    def __post_init__(self) -> None:
        self.calibrated(self.unchecked, self.thresholds)

    def calibrated(self, unchecked: list[str], thresholds: dict[str, float]) -> None:
        """Set what calibration decided, and the lookups derived from it."""
        self.unchecked, self.thresholds = unchecked, thresholds
        skip = set(unchecked)
        self.index = {c: i for i, c in enumerate(self.vocabulary) if c not in skip}
        self.cutoffs = np.array([thresholds.get(c, self.threshold) for c in self.vocabulary], np.float32)

    def known(self, caption: str) -> list[int]:
        """Vocabulary indices of the caption's checkable concepts (unknown ones, and those that
        calibration found the images do not show, such as a template's filler words, are not checked)."""
        return [self.index[c] for c in concepts(caption) if c in self.index]

    @torch.no_grad()
    def predict(self, images: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Concept probabilities (N x V) and features (N x F) of NHWC float images in [0, 1]."""
        self.net.eval()
        probs, feats = [], []
        for i in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[i : i + batch], np.float32)).permute(0, 3, 1, 2)
            if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
                x = torch.nn.functional.interpolate(
                    x, size=(self.resolution, self.resolution), mode="bilinear", antialias=True, align_corners=False
                )
            out = self.net(x)
            probs.append(torch.sigmoid(out["logits"]).numpy())
            feats.append(out["features"].numpy())
        return np.concatenate(probs), np.concatenate(feats)

    def config(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": 1,
            "num_concepts": len(self.vocabulary),
            "width": self.net.trunk[0][0].out_channels,
            "features": self.net.head.in_features,
            "resolution": self.resolution,
            "threshold": self.threshold,
            "vocabulary": self.vocabulary,
            "unchecked": self.unchecked,
            "thresholds": self.thresholds,
            "held_out": self.held_out,
            "training": self.training,
            "info": self.info,
        }

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(path / "model.safetensors"))
        save_numpy({k: np.ascontiguousarray(v, np.float32) for k, v in self.reference.items()},
                   str(path / "reference.safetensors"))  # fmt: skip
        (path / "config.json").write_text(json.dumps(self.config(), indent=1))

    @classmethod
    def load(cls, path: Path) -> CaptionEvaluator:
        path = Path(path)
        for name in FILES:
            if not (path / name).is_file():
                raise FileNotFoundError(f"caption evaluator file not found: {path / name}")
        cfg = json.loads((path / "config.json").read_text())
        if cfg.get("format") != FORMAT:
            raise ValueError(f"{path / 'config.json'}: not a fewstep caption evaluator (format {cfg.get('format')!r})")
        net = ConceptNet(cfg["num_concepts"], cfg["width"], cfg["features"])
        net.load_state_dict(load_file(str(path / "model.safetensors")))
        return cls(
            net=net.eval(),
            vocabulary=list(cfg["vocabulary"]),
            resolution=int(cfg["resolution"]),
            held_out=list(cfg["held_out"]),
            training=list(cfg["training"]),
            reference=load_numpy(str(path / "reference.safetensors")),
            threshold=float(cfg["threshold"]),
            info=dict(cfg.get("info", {})),
            unchecked=list(cfg.get("unchecked", [])),
            thresholds={str(k): float(v) for k, v in cfg.get("thresholds", {}).items()},
        )
