"""Shared fixtures: tiny SD3-architecture pipelines built in code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(2)

TINY = dict(
    layers=1, heads=2, head_dim=16, vae_channels=(16, 16, 16), clip_dims=(16, 32), t5_dim=64, dual_attention_layers=(0,)
)


@pytest.fixture(scope="session")
def tiny_family():
    from fewstep.zoo.builder import ShapesFamilyConfig

    return ShapesFamilyConfig(**TINY)


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory, tiny_family) -> Path:
    """A randomly initialised tiny pipeline saved in diffusers layout."""
    from fewstep.zoo.builder import build_pipeline

    path = tmp_path_factory.mktemp("tiny") / "pipeline"
    build_pipeline(tiny_family).save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_student_dir(tmp_path_factory, tiny_pipeline_dir) -> Path:
    """The tiny pipeline marked as a 2-step student (its record as `distill` writes it)."""
    import json
    import shutil

    path = tmp_path_factory.mktemp("tiny-student") / "student"
    shutil.copytree(tiny_pipeline_dir, path)
    record = {"steps": 2, "timesteps": [1.0, 0.75, 0.0], "sigmas": [1.0, 0.5], "guidance": 1.0, "t5_free": False}
    (path / "fewstep_student.json").write_text(json.dumps(record))
    return path


@pytest.fixture(scope="session")
def built_bundles(tmp_path_factory, tiny_student_dir) -> dict:
    """fp32 bundles of the tiny student for both CPU targets (OpenVINO static, ORT dynamic)."""
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig

    root = tmp_path_factory.mktemp("bundles")
    gates = {"num_prompts": 4, "distribution": {"enabled": False}}
    out = {}
    for target in ("openvino-cpu", "onnxruntime-cpu"):
        cfg = CompileConfig(target=target, precision="fp32", gates=gates, measure=False)
        out[target] = compile_bundle(tiny_student_dir, cfg, root / target)
    return out


@pytest.fixture(scope="session")
def caption_folder(tmp_path_factory) -> Path:
    """A 250-image captioned folder (coloured squares left or right) with about 25 held out."""
    from caption_helpers import write_folder

    return write_folder(tmp_path_factory.mktemp("caption-data") / "data", n=250)


@pytest.fixture(scope="session")
def tiny_caption_evaluator(tmp_path_factory, caption_folder) -> Path:
    """A caption evaluator of that folder, trained briefly (enough that calibration keeps concepts)."""
    from fewstep.families.captioned.train import EvaluatorConfig, train_caption_evaluator

    root = tmp_path_factory.mktemp("caption-evaluator")
    cfg = EvaluatorConfig(steps=150, batch=32, width=8, features=16, lr=3e-3, min_count=2, progress=False)
    return train_caption_evaluator(caption_folder, 16, root / "ev", cfg, root / "work")
