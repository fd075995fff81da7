"""An openvino-cpu bundle built with `openvino_layout: true` loads in OpenVINO GenAI's
Text2ImagePipeline and computes fewstep's images: on the same torch noise and GenAI's own
schedule, GenAI's image matches fewstep's runtime (PSNR >= 40 dB), quantized bundles included."""

import json

import numpy as np
import pytest

og = pytest.importorskip("openvino_genai", reason="OpenVINO GenAI is part of the genai extra")


@pytest.fixture(scope="module", params=["fp32", "int8-weights"])
def layout_bundle(request, tiny_student_dir, tmp_path_factory):
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig

    cfg = CompileConfig(
        target="openvino-cpu", precision=request.param, openvino_layout=True, gates={"enabled": False}, measure=False
    )
    path, _ = compile_bundle(tiny_student_dir, cfg, tmp_path_factory.mktemp("layout") / "bundle")
    return path


def _fewstep_image(bundle_dir, prompt, noise, sigmas):
    from fewstep.runtime.bundle import Bundle
    from fewstep.runtime.sampler import sample

    b = Bundle.open(bundle_dir)
    cond = b.encode([prompt])
    return b.decode(sample(noise, sigmas, lambda x, t: b.velocity(x, t, cond)))


def test_genai_generates_fewsteps_image_from_the_bundle(layout_bundle):
    import torch

    from fewstep.compile.openvino_layout import genai_sigmas
    from fewstep.runtime.bundle import Bundle

    b = Bundle.open(layout_bundle)  # the layout is part of the hashed, closed bundle
    p = b.pipeline
    assert (layout_bundle / "model_index.json").is_file() and "transformer/openvino_model.xml" in b.manifest.files
    pipe = og.Text2ImagePipeline(str(layout_bundle), "CPU")
    prompt = "a red circle"
    image = pipe.generate(
        prompt,
        num_inference_steps=p.steps,
        guidance_scale=1.0,
        height=p.image_size,
        width=p.image_size,
        max_sequence_length=p.tokenizers["text_encoder_3"].max_length,
        generator=og.TorchGenerator(0),
    )
    genai = np.array(image.data).astype(np.float32)[0] / 255.0
    noise = torch.randn((1, *p.latent_shape), generator=torch.Generator().manual_seed(0)).numpy()
    config = json.loads((layout_bundle / "scheduler" / "scheduler_config.json").read_text())
    ours = _fewstep_image(layout_bundle, prompt, noise, genai_sigmas(config, p.steps))[0]
    mse = float(np.mean((genai - ours) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(1 / mse)
    print(f"GenAI vs fewstep runtime, {b.manifest.precision['transformer']}: {psnr:.2f} dB")
    assert psnr >= 40.0  # GenAI's output is 8-bit: one level is 48 dB


def test_the_layout_transformer_keeps_the_timestep_phases_f32(layout_bundle):
    """optimum-intel and GenAI compile the layout's transformer at OpenVINO's default precision,
    bf16 on CPUs that have it: the IR carries fewstep's phase marks (targets/openvino_phases.py)
    through the layout's re-save, so their compile keeps the timestep embedding at f32 too."""
    import openvino as ov

    from fewstep.targets.openvino_phases import is_marked

    model = ov.Core().read_model(str(layout_bundle / "transformer" / "openvino_model.xml"))
    marked = [op for op in model.get_ordered_ops() if is_marked(op)]
    assert {"Sin", "Cos", "Multiply", "Reshape"} <= {op.get_type_name() for op in marked}
    timestep = next(p for p in model.get_parameters() if p.get_friendly_name() == "timestep")
    assert {t.get_node().get_type_name() for t in timestep.output(0).get_target_inputs()} == {"Reshape"}


def test_openvino_layout_is_refused_for_other_targets(tiny_student_dir, tmp_path):
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig

    cfg = CompileConfig(target="onnxruntime-cpu", openvino_layout=True, gates={"enabled": False}, measure=False)
    with pytest.raises(ValueError, match="openvino_layout: only for the openvino-cpu target"):
        compile_bundle(tiny_student_dir, cfg, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_genai_samples_a_scheduler_grid_student_on_its_own_timesteps(tiny_pipeline_dir, tmp_path):
    """A student distilled with `grid: scheduler` needs no `shift_terminal`, so GenAI (which
    ignores that key) samples it on the student's own timesteps."""
    import torch

    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig
    from fewstep.compile.openvino_layout import genai_sigmas
    from fewstep.distill.config import DistributionMatching, FlashConfig, TrajectoryGuidance
    from fewstep.distill.run import distill
    from fewstep.runtime.bundle import Bundle

    cfg = FlashConfig(
        steps=4,
        grid="scheduler",
        trajectory_guidance=TrajectoryGuidance(iterations=2, num_prompts=4, teacher_steps=4, batch=4),
        distribution_matching=DistributionMatching(enabled=False),
    )
    student = distill(tiny_pipeline_dir, cfg, tmp_path / "student", progress=False)
    compiled = CompileConfig(
        target="openvino-cpu", precision="fp32", openvino_layout=True, gates={"enabled": False}, measure=False
    )
    path, _ = compile_bundle(student, compiled, tmp_path / "bundle")
    p = Bundle.open(path).pipeline
    config = json.loads((path / "scheduler" / "scheduler_config.json").read_text())
    assert config.get("shift_terminal") is None
    np.testing.assert_allclose(genai_sigmas(config, 4), p.sigmas, atol=1e-6)  # GenAI's schedule is the student's
    pipe = og.Text2ImagePipeline(str(path), "CPU")
    tokens = p.tokenizers["text_encoder_3"].max_length
    for seed, prompt in enumerate(["a red circle", "two blue squares"]):
        size = dict(height=p.image_size, width=p.image_size, max_sequence_length=tokens)
        out = pipe.generate(
            prompt, num_inference_steps=4, guidance_scale=1.0, generator=og.TorchGenerator(seed), **size
        )
        genai = np.array(out.data).astype(np.float32)[0] / 255.0
        noise = torch.randn((1, *p.latent_shape), generator=torch.Generator().manual_seed(seed)).numpy()
        ours = _fewstep_image(path, prompt, noise, list(p.sigmas))[0]
        mse = float(np.mean((genai - ours) ** 2))
        assert mse == 0 or 10 * np.log10(1 / mse) >= 40.0


def test_fewsteps_runtime_reads_the_layout_itself_with_no_second_copy(tiny_student_dir, tmp_path):
    """With `openvino_layout: true` the layout's IRs are the bundle's components: fewstep's runtime
    generates the same images as from a plain bundle, and no weight is stored twice."""
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig
    from fewstep.runtime.bundle import Bundle

    def build(layout: bool, out):
        cfg = CompileConfig(
            target="openvino-cpu", precision="fp32", openvino_layout=layout, gates={"enabled": False}, measure=False
        )
        return compile_bundle(tiny_student_dir, cfg, out)[0]

    plain, layout = build(False, tmp_path / "plain"), build(True, tmp_path / "layout")
    manifest = json.loads((layout / "manifest.json").read_text())
    assert not (layout / "components").exists()
    assert {c["layout"] for c in manifest["components"].values()} == {"openvino"}
    assert manifest["components"]["transformer"]["files"][0] == "transformer/openvino_model.xml"

    def weight_bytes(root):
        return sum(p.stat().st_size for p in root.rglob("*.bin"))

    assert weight_bytes(layout) < 1.05 * weight_bytes(plain)  # one copy (plus tokenizer IRs), not two
    prompts = ["a red circle", "two blue squares"]
    a, b = Bundle.open(plain).generate(prompts, seed=3), Bundle.open(layout).generate(prompts, seed=3)
    assert np.abs(a - b).max() < 1e-5
