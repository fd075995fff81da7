import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fewstep.distill import run as api_mod
from fewstep.distill import trainer as trainer_mod
from fewstep.distill.config import DistributionMatching, FlashConfig, TrajectoryGuidance
from fewstep.distill.run import distill
from fewstep.sd3_pipeline import load_pipeline
from fewstep.student import student_info

TINY = FlashConfig(
    steps=2,
    trajectory_guidance=TrajectoryGuidance(iterations=3, num_prompts=6, teacher_steps=4, batch=4),
    distribution_matching=DistributionMatching(iterations=3, critic_ratio=2, batch=4),
    checkpoint_every=2,
)


def _weights(path):
    return load_file(str(path / "transformer" / "diffusion_pytorch_model.safetensors"))


def test_student_is_a_diffusers_pipeline_with_its_timesteps(tiny_pipeline_dir, tmp_path):
    out = distill(tiny_pipeline_dir, TINY, tmp_path / "student", progress=False)
    info = student_info(out)
    assert info["steps"] == 2 and info["timesteps"] == pytest.approx([1.0, 0.75, 0.0])
    pipe = load_pipeline(out)
    # The documented diffusers call samples the student in K steps on its own timesteps.
    images = pipe(
        "a red circle",
        sigmas=info["sigmas"],
        num_inference_steps=2,
        guidance_scale=1.0,
        height=32,
        width=32,
        max_sequence_length=16,
        output_type="np",
    ).images
    assert images.shape == (1, 32, 32, 3) and np.isfinite(images).all()
    torch.testing.assert_close(pipe.scheduler.timesteps, torch.tensor([1000.0, 750.0]))
    teacher = _weights(tiny_pipeline_dir)
    assert any(not torch.equal(teacher[k], v) for k, v in _weights(out).items())  # it trained
    assert info["stock_scheduler"]["exact"] and info["teacher"] == tiny_pipeline_dir.name
    # nothing shipped names a build-machine path
    shipped = [out / "model_index.json", out / "fewstep_student.json", *out.glob("*/config.json")]
    assert not [f for f in shipped if str(tmp_path) in f.read_text() or str(tiny_pipeline_dir) in f.read_text()]


@pytest.mark.parametrize("steps", [2, 4])
def test_stock_diffusers_call_samples_the_students_own_timesteps(tiny_pipeline_dir, tmp_path, steps):
    """`pipe(prompt, num_inference_steps=K)` with the student's own scheduler config (no `sigmas=`)
    gives the images of the recorded-sigmas call and of fewstep's sampler on the same noise."""
    from diffusers import StableDiffusion3Pipeline

    from fewstep.sampling import GenerationConfig, initial_noise, sample_torch, sampling_for

    cfg = TINY.model_copy(update={"steps": steps})
    out = distill(tiny_pipeline_dir, cfg, tmp_path / "student", progress=False)
    info = student_info(out)
    pipe = StableDiffusion3Pipeline.from_pretrained(str(out))  # stock diffusers, nothing of fewstep's
    pipe.set_progress_bar_config(disable=True)
    noise = initial_noise(pipe, 0, 2)
    call = dict(guidance_scale=1.0, height=32, width=32, max_sequence_length=16, output_type="np", latents=noise)
    stock = pipe(["a red circle", "two blue squares"], num_inference_steps=steps, **call).images
    want = [1000 * t for t in info["timesteps"][:-1]]
    torch.testing.assert_close(pipe.scheduler.timesteps, torch.tensor(want), atol=1e-3, rtol=0)
    recorded = pipe(["a red circle", "two blue squares"], sigmas=info["sigmas"], **call).images
    sampling = sampling_for(pipe, out)
    ours = sample_torch(
        pipe,
        ["a red circle", "two blue squares"],
        noise,
        GenerationConfig(steps=steps, guidance=1.0, sigmas=sampling.call_sigmas),
    )
    for other in (recorded, ours):
        mse = float(np.mean((stock - other) ** 2))
        assert mse == 0.0 or 10 * np.log10(1.0 / mse) >= 40.0


def test_trajectories_are_cached_and_reused(tiny_pipeline_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    distill(tiny_pipeline_dir, TINY, tmp_path / "a", cache_dir=cache, progress=False)
    files = sorted(p.name for p in cache.iterdir())
    assert len([f for f in files if f.endswith(".safetensors")]) == 1

    def boom(*a, **k):
        raise AssertionError("trajectories were rebuilt")

    monkeypatch.setattr(api_mod, "build_trajectories", boom)
    distill(tiny_pipeline_dir, TINY, tmp_path / "b", cache_dir=cache, progress=False)
    assert sorted(p.name for p in cache.iterdir()) == files


def test_distillation_resumes_exactly_after_a_kill(tiny_pipeline_dir, tmp_path, monkeypatch):
    straight = distill(tiny_pipeline_dir, TINY, tmp_path / "a", progress=False)
    real = trainer_mod.save_checkpoint

    def save_then_die(root, step, *a, **k):
        out = real(root, step, *a, **k)
        if step == 4:  # inside distribution matching
            raise KeyboardInterrupt("killed")
        return out

    monkeypatch.setattr(trainer_mod, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        distill(tiny_pipeline_dir, TINY, tmp_path / "b", progress=False)
    assert not (tmp_path / "b").exists()
    monkeypatch.setattr(trainer_mod, "save_checkpoint", real)
    resumed = distill(tiny_pipeline_dir, TINY, tmp_path / "b", progress=False)
    a, b = _weights(straight), _weights(resumed)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    log = (tmp_path / ".b.work" / "losses.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in log] == list(range(6))


def test_t5_free_student_has_no_t5(tiny_pipeline_dir, tmp_path):
    cfg = TINY.model_copy(update={"t5_free": True})
    out = distill(tiny_pipeline_dir, cfg, tmp_path / "s", progress=False)
    index = json.loads((out / "model_index.json").read_text())
    assert index["text_encoder_3"] == [None, None]
    assert not (out / "text_encoder_3").exists()
    assert load_pipeline(out).text_encoder_3 is None


def test_gan_blocks_beyond_the_model_are_named(tiny_pipeline_dir, tmp_path):
    cfg = TINY.model_copy(
        update={"distribution_matching": TINY.distribution_matching.model_copy(
            update={"gan": TINY.distribution_matching.gan.model_copy(update={"enabled": True, "blocks": (0, 99)})}
        )}
    )  # fmt: skip
    with pytest.raises(
        ValueError, match=r"distribution_matching.gan.blocks: \[0, 99\]; this transformer has blocks 0..0"
    ):
        distill(tiny_pipeline_dir, cfg, tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()


def test_scheduler_grid_student_keeps_the_teachers_scheduler(tiny_pipeline_dir, tmp_path):
    """`grid: scheduler`: the student's timesteps are those the teacher's own scheduler gives for
    K steps, so its scheduler config is the teacher's (no shift_terminal, which GenAI ignores)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    cfg = TINY.model_copy(update={"steps": 4, "grid": "scheduler"})
    out = distill(tiny_pipeline_dir, cfg, tmp_path / "student", progress=False)
    info = student_info(out)
    teacher = FlowMatchEulerDiscreteScheduler.from_pretrained(str(tiny_pipeline_dir / "scheduler"))
    teacher.set_timesteps(num_inference_steps=4)
    assert info["timesteps"][:-1] == pytest.approx((teacher.timesteps / 1000).tolist(), abs=1e-6)
    assert info["stock_scheduler"]["shift_only"] and info["stock_scheduler"]["shift_terminal"] is None
    saved = json.loads((out / "scheduler" / "scheduler_config.json").read_text())
    assert saved.get("shift_terminal") is None and saved["shift"] == teacher.config.shift


def test_grid_and_timesteps_are_exclusive():
    with pytest.raises(ValueError, match="give either grid or timesteps"):
        FlashConfig(steps=2, grid="scheduler", timesteps=[1.0, 0.5])
