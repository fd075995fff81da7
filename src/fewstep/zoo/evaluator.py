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
from scipy import ndimage
from torch import nn

from fewstep.families.frechet import frechet_distance  # noqa: F401 - re-exported for the zoo
from fewstep.zoo import shapes_data as sd

CATEGORIES = ("colour", "shape", "size", "count", "position", "relation")
POSITION_LIMIT = 0.42  # centre within the outer 42 % of the image on the stated side
RELATION_MARGIN = 0.05


class ShapesEvaluator(nn.Module):
    """A fully convolutional detector on an 8x8 grid (one object centre per cell at most).

    Per cell: class logits (the 24 colour-shape classes + background), the centre's offset
    in the cell, and a large/small logit. Features for FID: global mean and max pooling of
    the last feature map.
    """

    def __init__(self, width: int = 32):
        super().__init__()
        self.config = {"width": width}

        def block(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(8, cout), nn.GELU())

        w = width
        self.trunk = nn.Sequential(
            block(3, w, 1),
            block(w, w, 1),
            block(w, 2 * w, 2),
            block(2 * w, 4 * w, 2),
            block(4 * w, 4 * w, 1),
            block(4 * w, 4 * w, 1),
        )
        self.head = nn.Conv2d(4 * w, sd.NUM_CLASSES + 1 + 3, 1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """images: N,3,32,32 in [0, 1]."""
        f = self.trunk(images * 2 - 1)
        h = self.head(f)
        k = sd.NUM_CLASSES + 1
        return {
            "features": torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1),
            "cell_logits": h[:, :k],
            "offset": torch.sigmoid(h[:, k : k + 2]),
            "large_logits": h[:, k + 2],
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
    cells = labels["cells"]
    obj = (cells < sd.NUM_CLASSES).float()
    weight = 1.0 + 4.0 * obj  # objects are rare among cells
    ce = (nn.functional.cross_entropy(out["cell_logits"], cells, reduction="none") * weight).mean()
    denom = obj.sum().clamp(min=1)
    target = labels["offset"].permute(0, 3, 1, 2)
    off = (((out["offset"] - target) ** 2).sum(1) * obj).sum() / denom
    bce = nn.functional.binary_cross_entropy_with_logits(out["large_logits"], labels["cell_large"], reduction="none")
    return ce + 4 * off + (bce * obj).sum() / denom


def _decode(out: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Per-class count, centroid and size from the cell predictions."""
    cls = out["cell_logits"].argmax(1).numpy()  # N, G, G
    n, g = cls.shape[0], cls.shape[1]
    gx, gy = np.meshgrid(np.arange(g), np.arange(g))
    px = (gx[None] + out["offset"][:, 0].numpy()) / g
    py = (gy[None] + out["offset"][:, 1].numpy()) / g
    large = (out["large_logits"] > 0).numpy()
    count = np.zeros((n, sd.NUM_CLASSES), np.int64)
    cx = np.full((n, sd.NUM_CLASSES), 0.5, np.float32)
    cy = np.full((n, sd.NUM_CLASSES), 0.5, np.float32)
    big = np.zeros((n, sd.NUM_CLASSES), bool)
    eight = np.ones((3, 3), bool)
    for i in range(n):
        for k in np.unique(cls[i]):
            if k == sd.NUM_CLASSES:
                continue
            # Centres are >= 2.25 cells apart: touching same-class cells are one object.
            comp, num = ndimage.label(cls[i] == k, structure=eight)
            xs = [px[i][comp == j].mean() for j in range(1, num + 1)]
            ys = [py[i][comp == j].mean() for j in range(1, num + 1)]
            count[i, k] = num
            cx[i, k], cy[i, k] = np.mean(xs), np.mean(ys)
            big[i, k] = large[i][cls[i] == k].mean() > 0.5
    return {"count": count, "cx": cx, "cy": cy, "large": big}


@torch.no_grad()
def predict(model: ShapesEvaluator, images: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
    """Run the evaluator on NHWC float images in [0, 1]."""
    outs: dict[str, list[np.ndarray]] = {"features": [], "count": [], "cx": [], "cy": [], "large": []}
    for i in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[i : i + batch])).float().permute(0, 3, 1, 2)
        o = model(x)
        outs["features"].append(o["features"].numpy())
        for k, v in _decode(o).items():
            outs[k].append(v)
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
        res["position"] = (
            bound and {"left": x < lim, "right": x > 1 - lim, "top": y < lim, "bottom": y > 1 - lim}[spec.position]
        )
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
    per_category = {c: float(np.mean([r[c] for r in rows if c in r])) for c in CATEGORIES if any(c in r for r in rows)}
    per_kind = {
        k: float(np.mean([r["all"] for r, s in zip(rows, specs) if s.kind == k]))
        for k in sd.KINDS
        if any(s.kind == k for s in specs)
    }
    return {"alignment": float(np.mean([r["all"] for r in rows])), "per_category": per_category, "per_kind": per_kind}
