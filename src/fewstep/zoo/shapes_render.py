"""Drawing `zoo:shapes` scenes: a *layout* is one concrete drawing of a scene spec (centres and
radii, by rejection sampling); `render` rasterises it (anti-aliased by supersampling), `labels`
gives the evaluator's per-cell targets, and `sample_batch` draws captioned training images."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from fewstep.zoo.shapes_data import (
    NUM_CLASSES,
    SIZES,
    Obj,
    SceneSpec,
    caption,
    class_index,
    random_spec,
    training_spec,
)

RGB = {
    "red": (0.90, 0.10, 0.10),
    "green": (0.10, 0.75, 0.20),
    "blue": (0.15, 0.30, 0.95),
    "yellow": (0.95, 0.90, 0.10),
    "purple": (0.60, 0.20, 0.80),
    "orange": (1.00, 0.55, 0.05),
}


BACKGROUND = (0.08, 0.08, 0.10)


RADIUS = {"small": 3.8, "large": 6.2}  # in pixels of a 32 px image


@dataclass(frozen=True)
class Placed:
    colour: str
    shape: str
    size: str
    cx: float
    cy: float


@dataclass
class Layout:
    objects: list[Placed] = field(default_factory=list)


def _fits(objs: list[Placed], cx: float, cy: float, r: float) -> bool:
    return all(np.hypot(cx - o.cx, cy - o.cy) >= r + RADIUS[o.size] + 1.5 for o in objs)


def _place(rng, size, lo_x=None, hi_x=None, lo_y=None, hi_y=None, res=32.0):
    r = RADIUS[size] + 1.0
    lx, hx = max(r, lo_x if lo_x is not None else r), min(res - r, hi_x if hi_x is not None else res - r)
    ly, hy = max(r, lo_y if lo_y is not None else r), min(res - r, hi_y if hi_y is not None else res - r)
    return float(rng.uniform(lx, max(lx, hx))), float(rng.uniform(ly, max(ly, hy)))


def layout_for(spec: SceneSpec, rng: np.random.Generator) -> Layout:
    """Draw a concrete layout that satisfies the spec (rejection sampling)."""
    for _ in range(200):
        out = _try_layout(spec, rng)
        if out is not None:
            return out
    raise RuntimeError(f"could not lay out {spec.key()}")


def _size(obj: Obj, rng) -> str:
    return obj.size or str(rng.choice(SIZES))


def _try_layout(spec: SceneSpec, rng) -> Layout | None:
    o0 = spec.objects[0]
    if spec.kind == "single":
        s = _size(o0, rng)
        return Layout([Placed(o0.colour, o0.shape, s, *_place(rng, s))])
    if spec.kind == "position":
        s = _size(o0, rng)
        box = {
            "left": (None, 11.0, None, None),
            "right": (21.0, None, None, None),
            "top": (None, None, None, 11.0),
            "bottom": (None, None, 21.0, None),
        }[spec.position]
        return Layout([Placed(o0.colour, o0.shape, s, *_place(rng, s, *box))])
    if spec.kind == "count":
        placed: list[Placed] = []
        for _ in range(spec.count):
            s = _size(o0, rng)
            for _try in range(50):
                cx, cy = _place(rng, s)
                if _fits(placed, cx, cy, RADIUS[s]):
                    placed.append(Placed(o0.colour, o0.shape, s, cx, cy))
                    break
            else:
                return None
        return Layout(placed)
    o1 = spec.objects[1]
    s0, s1 = _size(o0, rng), _size(o1, rng)
    a = _place(rng, s0)
    b = _place(rng, s1)
    if not _fits([Placed(o0.colour, o0.shape, s0, *a)], *b, RADIUS[s1]):
        return None
    if spec.kind == "relation":
        dx, dy = b[0] - a[0], b[1] - a[1]  # vector from object 0 to object 1
        need = {"left of": dx, "right of": -dx, "above": dy, "below": -dy}[spec.relation]
        other = abs(dy) if spec.relation in ("left of", "right of") else abs(dx)
        if need < 8.0 or other > need:
            return None
    return Layout([Placed(o0.colour, o0.shape, s0, *a), Placed(o1.colour, o1.shape, s1, *b)])


def _polygon(shape: str, cx: float, cy: float, r: float) -> np.ndarray | None:
    if shape == "square":
        h = r * 0.85
        return np.array([[cx - h, cy - h], [cx + h, cy - h], [cx + h, cy + h], [cx - h, cy + h]])
    if shape == "triangle":
        rr = r * 1.15
        ang = np.deg2rad([-90, 30, 150])
        return np.stack([cx + rr * np.cos(ang), cy + 0.1 * r + rr * np.sin(ang)], 1)
    if shape == "star":
        ang = np.deg2rad(-90 + 36 * np.arange(10))
        rad = np.where(np.arange(10) % 2 == 0, r * 1.2, r * 0.5)
        return np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)
    return None


def _mask(shape: str, cx: float, cy: float, r: float, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    poly = _polygon(shape, cx, cy, r)
    if poly is None:
        return (px - cx) ** 2 + (py - cy) ** 2 <= r * r
    inside = np.zeros(px.shape, bool)
    for (x1, y1), (x2, y2) in zip(poly, np.roll(poly, -1, 0)):
        if y1 == y2:
            continue
        crosses = (y1 > py) != (y2 > py)
        inside ^= crosses & (px < (x2 - x1) * (py - y1) / (y2 - y1) + x1)
    return inside


@functools.lru_cache(maxsize=8)
def _grid(resolution: int, supersample: int) -> np.ndarray:
    """Supersample centres in scene units (the scene is 32 units wide at every resolution)."""
    n = resolution * supersample
    coords = (np.arange(n) + 0.5) / supersample / (resolution / 32.0)
    coords.setflags(write=False)
    return coords


@functools.lru_cache(maxsize=8)
def _background_block(supersample: int) -> np.ndarray:
    block = np.empty((1, supersample, 1, supersample, 3), np.float32)
    block[:] = BACKGROUND
    return block.mean((1, 3))[0, 0]


def render(layout: Layout, resolution: int = 32, supersample: int = 4) -> np.ndarray:
    """Anti-aliased RGB image, float32 HWC in [0, 1].

    Each object's mask is evaluated only inside its bounding box, snapped to whole output
    pixels; output pixels no object touches get the average of an all-background block, so
    only touched blocks are averaged (the result equals averaging the whole supersampled
    image).
    """
    coords = _grid(resolution, supersample)
    out = np.empty((resolution, resolution, 3), np.float32)
    out[:] = _background_block(supersample)
    boxes = []
    for o in layout.objects:
        r = RADIUS[o.size] * 1.25 + 1.0  # covers the star's 1.2 r tips and the triangle's shift
        x0, x1 = np.searchsorted(coords, [o.cx - r, o.cx + r]) // supersample
        y0, y1 = np.searchsorted(coords, [o.cy - r, o.cy + r]) // supersample
        boxes.append((int(y0), min(int(y1) + 1, resolution), int(x0), min(int(x1) + 1, resolution)))
    s = supersample
    canvas = np.empty((resolution * s, resolution * s, 3), np.float32)
    canvas[:] = BACKGROUND
    for o, (y0, y1, x0, x1) in zip(layout.objects, boxes):  # later objects paint over earlier
        px, py = np.meshgrid(coords[x0 * s : x1 * s], coords[y0 * s : y1 * s])
        window = canvas[y0 * s : y1 * s, x0 * s : x1 * s]
        window[_mask(o.shape, o.cx, o.cy, RADIUS[o.size], px, py)] = RGB[o.colour]
    for y0, y1, x0, x1 in boxes:
        window = canvas[y0 * s : y1 * s, x0 * s : x1 * s]
        out[y0:y1, x0:x1] = window.reshape(y1 - y0, s, x1 - x0, s, 3).mean((1, 3))
    return out


GRID = 8  # evaluator cells per side; object centres are >= 9 px apart, so one per cell


def labels(layout: Layout) -> dict[str, np.ndarray]:
    """Exact evaluator targets.

    Per (colour, shape) class: count, centroid and size fraction. Per cell of an 8x8 grid:
    the class of the object centred there (NUM_CLASSES = background), the centre's offset
    within the cell, and whether it is large.
    """
    cells = np.full((GRID, GRID), NUM_CLASSES, np.int64)
    offset = np.zeros((GRID, GRID, 2), np.float32)
    cell_large = np.zeros((GRID, GRID), np.float32)
    for o in layout.objects:
        gx, gy = min(int(o.cx / 32 * GRID), GRID - 1), min(int(o.cy / 32 * GRID), GRID - 1)
        cells[gy, gx] = class_index(o.colour, o.shape)
        offset[gy, gx] = (o.cx / 32 * GRID - gx, o.cy / 32 * GRID - gy)
        cell_large[gy, gx] = float(o.size == "large")
    count = np.zeros(NUM_CLASSES, np.int64)
    cx = np.zeros(NUM_CLASSES, np.float32)
    cy = np.zeros(NUM_CLASSES, np.float32)
    large = np.zeros(NUM_CLASSES, np.float32)
    for o in layout.objects:
        k = class_index(o.colour, o.shape)
        count[k] += 1
        cx[k] += o.cx / 32.0
        cy[k] += o.cy / 32.0
        large[k] += float(o.size == "large")
    present = count > 0
    for arr in (cx, cy, large):
        arr[present] /= count[present]
    return {
        "count": count,
        "cx": cx,
        "cy": cy,
        "large": large,
        "cells": cells,
        "offset": offset,
        "cell_large": cell_large,
    }


@dataclass
class Batch:
    images: np.ndarray  # N, H, W, 3 float32 in [0, 1]
    captions: list[str]
    specs: list[SceneSpec]
    labels: dict[str, np.ndarray]


def sample_batch(rng: np.random.Generator, n: int, resolution: int = 32, held_out: bool = False) -> Batch:
    """Draw n captioned training images (or held-out ones, for reference sets)."""
    specs, caps, imgs, labs = [], [], [], []
    for _ in range(n):
        if held_out:
            spec = random_spec(rng)
            while not spec.held_out():
                spec = random_spec(rng)
        else:
            spec = training_spec(rng)
        lay = layout_for(spec, rng)
        specs.append(spec)
        caps.append(caption(spec, int(rng.integers(0, 4))))
        imgs.append(render(lay, resolution))
        labs.append(labels(lay))
    stacked = {k: np.stack([lab[k] for lab in labs]) for k in labs[0]}
    return Batch(np.stack(imgs), caps, specs, stacked)


def reference_images(specs: list[SceneSpec], seed: int, resolution: int = 32) -> np.ndarray:
    """Real images drawn for the given specs (the FID reference set)."""
    rng = np.random.default_rng(seed)
    return np.stack([render(layout_for(s, rng), resolution) for s in specs])
