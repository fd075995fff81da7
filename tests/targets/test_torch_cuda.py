"""The torch-cuda target: its whole path (export of the library models, bundle, rebuild, gates,
generation) runs here through a CPU twin of the class; the CUDA run itself needs a GPU and skips
with that reason."""

import json

import pytest
import torch

from fewstep.targets import registry
from fewstep.targets.torch_cuda import TorchCUDA
from fewstep.testing import run_conformance


class TorchOnCPU(TorchCUDA):  # the same class on the CPU: every line but the device and torch.compile
    name = "torch-cpu-twin"
    device = "cpu"


@pytest.fixture
def cpu_twin(monkeypatch):
    monkeypatch.setattr(registry, "_EXTRA", {})
    registry.register_target(TorchOnCPU)
    return TorchOnCPU.name


def test_torch_target_passes_the_conformance_suite_on_a_cpu_twin(cpu_twin, tmp_path):
    results = run_conformance(cpu_twin, ["bf16"], work=tmp_path)  # fp32: the default-gates test below
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    wrapper = json.loads((tmp_path / "bf16" / "components" / "transformer" / "wrapper.json").read_text())
    assert wrapper["wrapper"] == "transformer" and wrapper["precision"] == "bf16"
    assert not list((tmp_path / "bf16").rglob("*.bin")) and list((tmp_path / "bf16").rglob("*.safetensors"))


def test_fp32_torch_bundle_matches_the_torch_student_at_default_gates(cpu_twin, tiny_student_dir, tmp_path):
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig

    cfg = CompileConfig(
        target=cpu_twin, precision="fp32", measure=False, gates={"num_prompts": 2, "distribution": {"enabled": False}}
    )
    _, report = compile_bundle(tiny_student_dir, cfg, tmp_path / "bundle")
    assert report.passed
    cos = [r.value for r in report.results if r.gate.endswith("/cosine")]
    assert min(cos) >= 0.99999  # the same modules in float32: identical up to summation order
    psnr = next(r.value for r in report.results if r.gate == "image/psnr")
    assert psnr >= 60


def test_rebuild_refuses_records_outside_the_model_libraries(tmp_path):
    from fewstep.component_modules import rebuild

    with pytest.raises(ValueError, match="is not one of diffusers, transformers"):
        rebuild({"wrapper": "transformer", "library": "os", "class": "system"}, tmp_path)
    with pytest.raises(ValueError, match="unknown component wrapper"):
        rebuild({"wrapper": "shell", "library": "diffusers", "class": "AutoencoderKL"}, tmp_path)
    with pytest.raises(ValueError, match="no model class"):
        rebuild({"wrapper": "vae_decoder", "library": "diffusers", "class": "load_image"}, tmp_path)


def test_torch_cuda_says_why_it_cannot_run_without_a_gpu():
    reason = TorchCUDA().unavailable_reason()
    if torch.cuda.is_available():
        assert reason is None
    else:
        assert "needs an NVIDIA GPU" in reason


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (the lent device machine)")
def test_torch_cuda_conformance_on_the_gpu(tmp_path):
    results = run_conformance("torch-cuda", ["bf16"], work=tmp_path)
    assert all(r.passed for r in results), [r for r in results if not r.passed]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_torch_cuda_builds_here_with_gates_off_and_refuses_gates_it_cannot_run(tiny_student_dir, tmp_path):
    """A GPU bundle can be built on a CPU machine and gated where it runs; gating it here is refused
    before any work, naming the switch."""
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig

    gated = CompileConfig(target="torch-cuda", precision="bf16", measure=False, gates={"num_prompts": 1})
    with pytest.raises(ValueError, match=r"cannot run here \(needs an NVIDIA GPU.*gates.enabled: false"):
        compile_bundle(tiny_student_dir, gated, tmp_path / "gated")
    assert not (tmp_path / "gated").exists()
    cfg = CompileConfig(target="torch-cuda", precision="bf16", measure=False, gates={"enabled": False})
    path, _ = compile_bundle(tiny_student_dir, cfg, tmp_path / "bundle")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["target"] == "torch-cuda" and set(manifest["precision"].values()) == {"bf16"}
    assert (path / "components" / "transformer" / "model" / "config.json").is_file()
