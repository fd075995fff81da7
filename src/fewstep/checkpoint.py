"""Training checkpoints without pickle: tensors in safetensors, the rest in JSON.

A checkpoint is a directory `step_<N>` written to a temporary name and renamed when
complete, so a run killed at any point resumes from the newest complete one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from fewstep.fsutil import atomic_dir


def _split_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, meta = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, pstate in state["state"].items():
        meta["state"][str(pid)] = {}
        for name, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{name}"] = value.contiguous()
                meta["state"][str(pid)][name] = None
            else:
                meta["state"][str(pid)][name] = value
    return tensors, meta


def _join_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for pid, names in meta["state"].items():
        state[int(pid)] = {n: (tensors[f"{pid}.{n}"] if v is None else v) for n, v in names.items()}
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    root: Path,
    step: int,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    rng: np.random.Generator,
    extra: dict[str, Any] | None = None,
    keep: int = 2,
    generators: dict[str, torch.Generator] | None = None,
) -> Path:
    """Write `root/step_<step>` atomically and prune all but the newest `keep`."""
    target = root / f"step_{step:08d}"
    with atomic_dir(target) as tmp:
        for name, module in modules.items():
            sd = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
            save_file(sd, str(tmp / f"{name}.safetensors"))
        meta: dict[str, Any] = {"step": step, "optimizers": {}, "extra": extra or {}}
        for name, opt in optimizers.items():
            tensors, ometa = _split_optimizer(opt.state_dict())
            save_file(tensors, str(tmp / f"optim_{name}.safetensors"))
            meta["optimizers"][name] = ometa
        meta["numpy_rng"] = rng.bit_generator.state
        states = {"torch_rng": torch.get_rng_state()}
        states.update({f"gen.{k}": g.get_state() for k, g in (generators or {}).items()})
        save_file(states, str(tmp / "rng.safetensors"))
        (tmp / "state.json").write_text(json.dumps(meta))
    for old in sorted(root.glob("step_*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint under `root`, or None."""
    done = [p for p in sorted(root.glob("step_*")) if (p / "state.json").exists()]
    return done[-1] if done else None


def load_checkpoint(
    path: Path,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    rng: np.random.Generator,
    generators: dict[str, torch.Generator] | None = None,
) -> dict[str, Any]:
    """Restore modules, optimizers and RNG state in place; return the saved metadata."""
    meta = json.loads((path / "state.json").read_text())
    for name, module in modules.items():
        module.load_state_dict(load_file(str(path / f"{name}.safetensors")))
    for name, opt in optimizers.items():
        tensors = load_file(str(path / f"optim_{name}.safetensors"))
        opt.load_state_dict(_join_optimizer(tensors, meta["optimizers"][name]))
    rng.bit_generator.state = meta["numpy_rng"]
    states = load_file(str(path / "rng.safetensors"))
    torch.set_rng_state(states["torch_rng"])
    for k, g in (generators or {}).items():
        g.set_state(states[f"gen.{k}"])
    return meta
