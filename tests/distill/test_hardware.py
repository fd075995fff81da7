"""The trainer's hardware switches, checked on the CPU (the same code runs on CUDA through
accelerate): bf16 autocast with float32 master weights, a bfloat16 teacher, activation
checkpointing and fused AdamW."""

import torch

from fewstep.distill.config import DistributionMatching, FlashConfig, Hardware, TrajectoryGuidance
from fewstep.distill.schedule import student_timesteps
from fewstep.distill.trainer import DistillRun
from fewstep.distill.trajectories import build_trajectories, training_prompts
from fewstep.sd3_pipeline import load_pipeline


def _run(pipe_dir, hardware: Hardware, gan: bool = True):
    cfg = FlashConfig(
        steps=2,
        trajectory_guidance=TrajectoryGuidance(iterations=2, num_prompts=4, teacher_steps=4, batch=4),
        distribution_matching=DistributionMatching(
            iterations=2, critic_ratio=1, batch=4, gan={"enabled": gan, "real": "teacher"}
        ),
        hardware=hardware,
    )
    pipe = load_pipeline(pipe_dir)
    ts = student_timesteps(cfg)
    traj = build_trajectories(pipe, training_prompts("shapes", 4, 0), ts, 2.0, 4, 3.0, 0, progress=False)
    run = DistillRun(pipe, traj, cfg)
    run.prepare()
    return pipe, run


def _grads(module) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in module.parameters() if p.grad is not None]


def test_bf16_autocast_keeps_float32_masters_and_a_bf16_teacher(tiny_pipeline_dir):
    hw = Hardware(mixed_precision="bf16", teacher_dtype="bfloat16", activation_checkpointing=True, fused_optimizer=True)
    pipe, run = _run(tiny_pipeline_dir, hw)
    rows = [run.step(i) for i in range(4)]  # 2 trajectory-guidance + 2 distribution-matching iterations
    assert all(torch.isfinite(torch.tensor(v)) for row in rows for v in row.values())
    assert {"tg", "fake", "disc", "dm", "adv"} <= set().union(*rows)
    assert all(p.dtype == torch.float32 for p in run.student.parameters())  # master weights
    assert all(p.dtype == torch.bfloat16 for p in run.teacher.parameters())
    assert all(p.dtype == torch.float32 for p in pipe.transformer.parameters())  # the pipeline is untouched
    assert run.teacher is not pipe.transformer
    assert run.opt_s.defaults["fused"] and run.acc.mixed_precision == "bf16"
    assert run.student.is_gradient_checkpointing and run.fake.is_gradient_checkpointing


def test_activation_checkpointing_changes_memory_not_numerics(tiny_pipeline_dir):
    _, plain = _run(tiny_pipeline_dir, Hardware(mixed_precision="no"), gan=False)
    _, ckpt = _run(tiny_pipeline_dir, Hardware(mixed_precision="no", activation_checkpointing=True), gan=False)
    assert not plain.student.is_gradient_checkpointing and ckpt.student.is_gradient_checkpointing
    a, b = plain.step(0), ckpt.step(0)
    assert a["tg"] == b["tg"]
    for ga, gb in zip(_grads(plain.student), _grads(ckpt.student), strict=True):
        torch.testing.assert_close(ga, gb, rtol=1e-5, atol=1e-7)


def test_fused_adamw_matches_the_plain_update(tiny_pipeline_dir):
    _, plain = _run(tiny_pipeline_dir, Hardware(mixed_precision="no", fused_optimizer=False), gan=False)
    _, fused = _run(tiny_pipeline_dir, Hardware(mixed_precision="no", fused_optimizer=True), gan=False)
    assert not plain.opt_s.defaults["fused"] and fused.opt_s.defaults["fused"]
    plain.step(0), fused.step(0)
    for pa, pb in zip(plain.student.parameters(), fused.student.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_default_hardware_is_plain_float32_on_the_cpu(tiny_pipeline_dir):
    pipe, run = _run(tiny_pipeline_dir, Hardware(mixed_precision="no"), gan=False)
    assert run.device.type == "cpu" and run.teacher is pipe.transformer  # no copy where nothing changes
    assert not run.opt_s.defaults["fused"] and run.acc.mixed_precision == "no"
