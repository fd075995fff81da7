"""The `zoo:shapes` evaluator: a small CNN trained on the data's exact labels.

Per (colour, shape) class it predicts how many objects there are (0-3), their mean centre
and whether they are large. Its penultimate features give a domain FID; its predictions,
checked against what a prompt states, give a GenEval-style alignment score.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from scipy import linalg
from torch import nn

from fewstep.zoo import shapes_data as sd

MAX_COUNT = 3
CATEGORIES = ("colour", "shape", "size", "count", "position", "relation")
POSITION_LIMIT = 0.42  # centre within the outer 42 % of the image on the stated side
RELATION_MARGIN = 0.05


class ShapesEvaluator(nn.Module):
    def __init__(self, width: int = 32, features: int = 128):
        super().__init__()
        self.config = {"width": width, "features": features}

        def block(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(8, cout), nn.GELU())

        w = width
        self.body = nn.Sequential(
            block(3, w, 1), block(w, w, 1), block(w, 2 * w, 2), block(2 * w, 4 * w, 2), block(4 * w, 4 * w, 2),
            nn.Flatten(), nn.Linear(4 * w * 16, 256), nn.GELU(), nn.Linear(256, features), nn.GELU(),
        )
        self.count = nn.Linear(features, sd.NUM_CLASSES * (MAX_COUNT + 1))
        self.centre = nn.Linear(features, sd.NUM_CLASSES * 2)
        self.large = nn.Linear(features, sd.NUM_CLASSES)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """images: N,3,32,32 in [0, 1]."""
        f = self.body(images * 2 - 1)
        centre = torch.sigmoid(self.centre(f)).view(-1, sd.NUM_CLASSES, 2)
        return {
            "features": f,
            "count_logits": self.count(f).view(-1, sd.NUM_CLASSES, MAX_COUNT + 1),
            "cx": centre[..., 0],
            "cy": centre[..., 1],
            "large_logits": self.large(f),
        }

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path / "model.safetensors"))
        (path / "config.json").write_text(json.dumps(self.config))

    @classmethod
    def load(cls, path: Path) -> ShapesEvaluator:
        path = Path(path)
        weights = path / "model.safetensors"
        if not weights.exists():
            raise FileNotFoundError(f"evaluator weights not found: {weights}")
        model = cls(**json.loads((path / "config.json").read_text()))
        model.load_state_dict(load_file(str(weights)))
        return model.eval()


def loss_fn(out: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]) -> torch.Tensor:
    count = labels["count"].clamp(max=MAX_COUNT)
    ce = nn.functional.cross_entropy(out["count_logits"].reshape(-1, MAX_COUNT + 1), count.reshape(-1))
    present = (count > 0).float()
    denom = present.sum().clamp(min=1)
    pos = (((out["cx"] - labels["cx"]) ** 2 + (out["cy"] - labels["cy"]) ** 2) * present).sum() / denom
    bce = nn.functional.binary_cross_entropy_with_logits(out["large_logits"], labels["large"], reduction="none")
    return ce + 20 * pos + (bce * present).sum() / denom


@torch.no_grad()
def predict(model: ShapesEvaluator, images: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
    """Run the evaluator on NHWC float images in [0, 1]."""
    outs: dict[str, list[np.ndarray]] = {"features": [], "count": [], "cx": [], "cy": [], "large": []}
    for i in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[i : i + batch])).float().permute(0, 3, 1, 2)
        o = model(x)
        outs["features"].append(o["features"].numpy())
        outs["count"].append(o["count_logits"].argmax(-1).numpy())
        outs["cx"].append(o["cx"].numpy())
        outs["cy"].append(o["cy"].numpy())
        outs["large"].append((o["large_logits"] > 0).numpy())
    return {k: np.concatenate(v) for k, v in outs.items()}


def _present(count: np.ndarray, colour: str | None = None, shape: str | None = None) -> bool:
    idx = [
        sd.class_index(c, s)
        for c in sd.COLOURS
        for s in sd.SHAPES
        if (colour is None or c == colour) and (shape is None or s == shape)
    ]
    return bool(count[idx].sum() > 0)


def check(spec: sd.SceneSpec, pred: dict[str, np.ndarray]) -> dict[str, bool]:
    """Which of the spec's stated facts the evaluator finds in one image's predictions.

    Returns a bool per applicable category plus "all" (every object, with its colour and
    shape bound together, and every count, size, position and relation correct).
    """
    count = pred["count"]
    res: dict[str, bool] = {
        "colour": all(_present(count, colour=o.colour) for o in spec.objects),
        "shape": all(_present(count, shape=o.shape) for o in spec.objects),
    }
    ks = [sd.class_index(o.colour, o.shape) for o in spec.objects]
    bound = all(count[k] > 0 for k in ks)
    if spec.kind == "count":
        res["count"] = int(count[ks[0]]) == spec.count
    elif spec.kind == "single":
        res["count"] = int(count.sum()) == 1
    if spec.objects[0].size is not None:
        res["size"] = bound and bool(pred["large"][ks[0]]) == (spec.objects[0].size == "large")
    if spec.position is not None:
        x, y = pred["cx"][ks[0]], pred["cy"][ks[0]]
        lim = POSITION_LIMIT
        res["position"] = bound and {"left": x < lim, "right": x > 1 - lim, "top": y < lim, "bottom": y > 1 - lim}[
            spec.position
        ]
    if spec.relation is not None:
        dx = pred["cx"][ks[1]] - pred["cx"][ks[0]]
        dy = pred["cy"][ks[1]] - pred["cy"][ks[0]]
        need = {"left of": dx, "right of": -dx, "above": dy, "below": -dy}[spec.relation]
        res["relation"] = bound and bool(need > RELATION_MARGIN)
    res["all"] = bound and all(v for k, v in res.items() if k not in ("colour", "shape"))
    return res


def alignment(specs: list[sd.SceneSpec], pred: dict[str, np.ndarray]) -> dict:
    """Overall alignment, per category and per prompt kind."""
    rows = [check(s, {k: v[i] for k, v in pred.items()}) for i, s in enumerate(specs)]
    per_category = {
        c: float(np.mean([r[c] for r in rows if c in r])) for c in CATEGORIES if any(c in r for r in rows)
    }
    per_kind = {
        k: float(np.mean([r["all"] for r, s in zip(rows, specs) if s.kind == k]))
        for k in sd.KINDS
        if any(s.kind == k for s in specs)
    }
    return {"alignment": float(np.mean([r["all"] for r in rows])), "per_category": per_category, "per_kind": per_kind}


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.isfinite(covmean).all():
        eps = np.eye(len(cov_a)) * 1e-6
        covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))
