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
