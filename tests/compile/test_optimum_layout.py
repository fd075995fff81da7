"""optimum-intel's `OVStableDiffusion3Pipeline` loads an `openvino_layout` bundle and, called the
stock way (`num_inference_steps=4`, `guidance_scale=1.0`), samples the student on its own
timesteps: in f32 it reproduces fewstep's runtime. optimum-intel needs its own virtual
environment (transformers < 5.6), created by the benchmark on first use: slow (`make test-all`)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_optimum_intel_samples_a_fewstep_bundle_right():
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "optimum_client.py"), "--images", "2", "--json"],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["f32"]["sigmas"][:-1] == pytest.approx([1.0, 0.9, 0.75, 0.5], abs=1e-6)
    assert result["f32"]["min_psnr_db"] >= 40.0
