"""The `zoo:shapes` data set: procedural, captioned images of coloured shapes.

A *scene spec* is what a caption states (objects, count, position, relation); a *layout*
is one concrete drawing of it (centres and radii). Specs are split into training and
held-out sets by a hash of their meaning, so evaluation prompts never appear in training
under any caption template. Everything is deterministic from a seed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle", "star")


COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")


SIZES = ("small", "large")


POSITIONS = ("left", "right", "top", "bottom")


RELATIONS = ("left of", "right of", "above", "below")


KINDS = ("single", "position", "count", "relation", "pair")


COUNT_WORDS = {1: "one", 2: "two", 3: "three"}


NUM_CLASSES = len(SHAPES) * len(COLOURS)


HELD_OUT_PERCENT = 15


KIND_WEIGHTS = (0.30, 0.15, 0.20, 0.20, 0.15)


POSITION_PHRASES = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}


def class_index(colour: str, shape: str) -> int:
    """Index of a (colour, shape) pair among the evaluator's classes."""
    return COLOURS.index(colour) * len(SHAPES) + SHAPES.index(shape)


@dataclass(frozen=True)
class Obj:
    colour: str
    shape: str
    size: str | None = None  # None: not stated in the caption

    def phrase(self, article: bool = True) -> str:
        words = [w for w in (self.size, self.colour, self.shape) if w]
        text = " ".join(words)
        if not article:
            return text
        return ("an " if text[0] in "aeiou" else "a ") + text


@dataclass(frozen=True)
class SceneSpec:
    """What a caption says. `objects` holds one object, or two for relation/pair."""

    kind: str
    objects: tuple[Obj, ...]
    count: int = 1
    position: str | None = None
    relation: str | None = None

    def key(self) -> str:
        objs = ";".join(f"{o.colour},{o.shape},{o.size}" for o in self.objects)
        return f"{self.kind}|{objs}|{self.count}|{self.position}|{self.relation}"

    def held_out(self) -> bool:
        digest = hashlib.sha256(self.key().encode()).digest()
        return int.from_bytes(digest[:4], "little") % 100 < HELD_OUT_PERCENT


TEMPLATES: dict[str, tuple[str, ...]] = {
    "single": ("{o0}", "a picture of {o0}", "{o0} on a dark background", "an image of {o0}"),
    "position": ("{o0} {pos}", "a picture of {o0} {pos}", "{pos}, {o0}", "an image with {o0} {pos}"),
    "count": ("{n} {p0}s", "a picture of {n} {p0}s", "an image with {n} {p0}s", "exactly {n} {p0}s"),
    "relation": (
        "{o0} {rel} {o1}",
        "a picture of {o0} {rel} {o1}",
        "{o0} placed {rel} {o1}",
        "an image of {o0} {rel} {o1}",
    ),
    "pair": ("{o0} and {o1}", "a picture of {o0} and {o1}", "{o0} next to {o1}", "an image with {o0} and {o1}"),
}


def caption(spec: SceneSpec, template: int = 0) -> str:
    """Caption for a spec; template 0 is the canonical form used for evaluation."""
    fmt = TEMPLATES[spec.kind][template % len(TEMPLATES[spec.kind])]
    o = spec.objects
    return fmt.format(
        o0=o[0].phrase(),
        p0=o[0].phrase(article=False),
        o1=o[1].phrase() if len(o) > 1 else "",
        n=COUNT_WORDS[spec.count],
        pos=POSITION_PHRASES.get(spec.position or "", ""),
        rel=spec.relation or "",
    )


def _random_obj(rng: np.random.Generator, with_size: bool) -> Obj:
    size = str(rng.choice(SIZES)) if with_size and rng.random() < 0.5 else None
    return Obj(str(rng.choice(COLOURS)), str(rng.choice(SHAPES)), size)


def random_spec(rng: np.random.Generator) -> SceneSpec:
    """Draw a scene spec from the full grammar (training and held-out alike)."""
    kind = KINDS[int(rng.choice(len(KINDS), p=KIND_WEIGHTS))]
    if kind == "single":
        return SceneSpec(kind, (_random_obj(rng, with_size=True),))
    if kind == "position":
        return SceneSpec(kind, (_random_obj(rng, False),), position=str(rng.choice(POSITIONS)))
    if kind == "count":
        return SceneSpec(kind, (_random_obj(rng, False),), count=int(rng.integers(2, 4)))
    a = _random_obj(rng, False)
    b = _random_obj(rng, False)
    while (b.colour, b.shape) == (a.colour, a.shape):
        b = _random_obj(rng, False)
    if kind == "relation":
        return SceneSpec(kind, (a, b), relation=str(rng.choice(RELATIONS)))
    return SceneSpec(kind, (a, b))


def training_spec(rng: np.random.Generator) -> SceneSpec:
    """A spec from the training split (never a held-out meaning)."""
    while True:
        spec = random_spec(rng)
        if not spec.held_out():
            return spec


def eval_specs(limit_per_kind: int = 40) -> dict[str, list[SceneSpec]]:
    """The fixed held-out evaluation specs per kind (at most `limit_per_kind` each)."""
    by_kind: dict[str, list[SceneSpec]] = {k: [] for k in KINDS}
    for spec in _enumerate_specs():
        if spec.held_out():
            by_kind[spec.kind].append(spec)
    rng = np.random.default_rng(1234)
    return {
        kind: [specs[i] for i in sorted(rng.permutation(len(specs))[:limit_per_kind])]
        for kind, specs in by_kind.items()
    }


def eval_prompts(num_images: int) -> list[SceneSpec]:
    """`num_images` held-out specs, balanced over kinds, in a fixed order."""
    specs = eval_specs()
    out = []
    for i in range(num_images):
        kind_specs = specs[KINDS[i % len(KINDS)]]
        out.append(kind_specs[(i // len(KINDS)) % len(kind_specs)])
    return out


def training_captions() -> list[str]:
    """Every caption the training split can produce (each spec in every template), sorted."""
    specs = [s for s in _enumerate_specs() if not s.held_out()]
    return sorted({caption(s, t) for s in specs for t in range(4)})


def _enumerate_specs():
    objs = [Obj(c, s) for c in COLOURS for s in SHAPES]
    for o in objs:
        for size in (None, *SIZES):
            yield SceneSpec("single", (Obj(o.colour, o.shape, size),))
        for pos in POSITIONS:
            yield SceneSpec("position", (o,), position=pos)
        for n in (2, 3):
            yield SceneSpec("count", (o,), count=n)
    for a in objs:
        for b in objs:
            if a == b:
                continue
            for rel in RELATIONS:
                yield SceneSpec("relation", (a, b), relation=rel)
            yield SceneSpec("pair", (a, b))
