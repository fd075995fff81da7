"""A runtime-only install (`pip install 'fewstep[runtime-onnxruntime]'`) brings no torch, diffusers or
transformers, and generates from a bundle; build commands then name the extra they need.
Slow (a fresh virtual environment from the package registry): `make test-all`."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_runtime_only_install_generates_without_torch(built_bundles, tmp_path):
    bundle, _ = built_bundles["onnxruntime-cpu"]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", f"{ROOT}[runtime-onnxruntime]"], check=True)
    probe = "import importlib.util as u; print([m for m in ('torch', 'diffusers', 'transformers') if u.find_spec(m)])"
    absent = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, check=True)
    assert absent.stdout.strip() == "[]"
    fewstep = venv / "bin" / "fewstep"
    out = tmp_path / "image.png"
    res = subprocess.run(
        [str(fewstep), "generate", str(bundle), "a red circle", "-o", str(out)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert out.is_file() and out.stat().st_size > 0
    cmd = [str(fewstep), "compile", "zoo:shapes-flash", "-o", str(tmp_path / "b"), "-t", "onnxruntime-cpu"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2 and "pip install 'fewstep[build]'" in res.stderr, res.stderr
