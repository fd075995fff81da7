"""Calibration data: component inputs along the student's own K-step trajectories.

Prompts are training captions (never the held-out gate prompts); every student timestep is
covered, and the timesteps seen are recorded so a bundle's manifest shows what calibrated it.
Collected inputs are cached on disk (npz) by model digest, prompts, sampling and seed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Calibration:
    """Per component: a list of input batches (name -> array); plus the timesteps covered."""

    inputs: dict[str, list[dict[str, np.ndarray]]]
    timesteps: list[float]
    prompts: list[str]

    def items(self, component: str, batch: int = 1) -> list[dict[str, np.ndarray]]:
        """The component's calibration inputs split into batches of `batch` rows."""
        out = []
        for feeds in self.inputs.get(component, []):
            n = next(iter(feeds.values())).shape[0]
            out += [{k: v[i : i + batch] for k, v in feeds.items()} for i in range(0, n - batch + 1, batch)]
        return out

    def record(self) -> dict:
        return {"prompts": len(self.prompts), "timesteps": self.timesteps}


def calibration_prompts(model_dir: Path, n: int, seed: int) -> list[str]:
    """The family's training prompts: never its held-out gate prompts."""
    from fewstep.families import family_for

    return family_for(model_dir).training_prompts(n, seed, model_dir)


def _key(
    model_digest: str, prompts: list[str], sampling, seed: int, collapse_null: bool, null_slots: int, hoist: bool
) -> str:
    slot = [collapse_null] if null_slots == 1 else [collapse_null, null_slots]  # 1 slot: the keys cached before
    slot += ["hoist_modulation"] if hoist else []  # likewise: unhoisted keys are unchanged
    blob = json.dumps([model_digest, prompts, sampling.to_json(), seed, *slot], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def collect(
    pipe,
    model_dir: Path,
    sampling,
    n: int,
    seed: int,
    cache_dir: Path | None = None,
    collapse_null: bool = True,
    null_slots: int = 1,
    hoist_modulation: bool = False,
) -> Calibration:
    """Run the torch student on n calibration prompts; keep every component's inputs."""
    from fewstep.components import MODULATION, pipeline_components
    from fewstep.fsutil import tree_digest
    from fewstep.gates.check import reference_inputs

    prompts = calibration_prompts(model_dir, n, seed)
    path = None
    if cache_dir is not None:
        key = _key(tree_digest(model_dir), prompts, sampling, seed, collapse_null, null_slots, hoist_modulation)
        path = Path(cache_dir) / f"calibration-{key}.npz"
        if path.exists():
            return _load(path, prompts)
    comps = pipeline_components(
        pipe, collapse_null=collapse_null, null_slots=null_slots, hoist_modulation=hoist_modulation
    )
    inputs = reference_inputs(pipe, prompts, sampling, seed, comps)
    steps = inputs.get(MODULATION) or inputs["transformer"]  # the component that takes the timestep
    timesteps = sorted({round(float(f["timestep"][0]) / 1000, 6) for f in steps}, reverse=True)
    calib = Calibration(inputs, timesteps, prompts)
    if path is not None:
        _save(path, calib)
    return calib


def _save(path: Path, calib: Calibration) -> None:
    arrays = {}
    for comp, feeds_list in calib.inputs.items():
        for i, feeds in enumerate(feeds_list):
            for name, value in feeds.items():
                arrays[f"{comp}|{i}|{name}"] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, __timesteps__=np.asarray(calib.timesteps), **arrays)
    tmp.replace(path)


def _load(path: Path, prompts: list[str]) -> Calibration:
    inputs: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    with np.load(path, allow_pickle=False) as data:
        timesteps = [float(t) for t in data["__timesteps__"]]
        for key in data.files:
            if key == "__timesteps__":
                continue
            comp, i, name = key.split("|")
            inputs.setdefault(comp, {}).setdefault(int(i), {})[name] = data[key]
    ordered = {c: [v[i] for i in sorted(v)] for c, v in inputs.items()}
    return Calibration(ordered, timesteps, prompts)
