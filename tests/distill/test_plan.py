"""`fewstep distill --plan`: the memory arithmetic, the refusal that names the switches, and the CLI."""

import json

import pytest
from typer.testing import CliRunner

from fewstep.distill.plan import GIB, PlanError, PlanInputs, check_fits, count_parameters, plan_memory, tokens_for

BASE = PlanInputs(params=1_000_000, layers=4, hidden=64, image_tokens=256, text_tokens=32, batch=2)


def test_parameter_count_is_the_models(tiny_pipeline_dir):
    from diffusers import SD3Transformer2DModel

    config = json.loads((tiny_pipeline_dir / "transformer" / "config.json").read_text())
    model = SD3Transformer2DModel.from_pretrained(str(tiny_pipeline_dir / "transformer"))
    assert count_parameters(config) == sum(p.numel() for p in model.parameters())


def test_sd35_medium_architecture_has_its_published_size():
    from fewstep.zoo.sd35_medium import SD35Config

    config = SD35Config().transformer
    assert 2.2e9 < count_parameters(config) < 2.3e9  # SD3.5-Medium's MMDiT-X: 2.24 B
    assert tokens_for(config, 1024, 333) == (4096, 333) and tokens_for(config, 512, 333) == (1024, 333)


def test_memory_arithmetic():
    p = plan_memory(BASE)
    assert p.trained_states == 32 * BASE.params and p.teacher == 4 * BASE.params and p.ema == 0
    per_block = BASE.batch * (256 + 32) * 64
    assert p.activations == 3 * per_block * 34 * 4 * 2  # 3 passes with GAN heads, float32 doubles 16-bit
    assert p.overhead == GIB + (p.trained_states + p.teacher + p.activations) // 10
    fsdp = plan_memory(PlanInputs(**{**BASE.__dict__, "devices": 4, "strategy": "fsdp"}))
    assert fsdp.trained_states == p.trained_states // 4
    ddp = plan_memory(PlanInputs(**{**BASE.__dict__, "devices": 4}))
    assert ddp.trained_states == p.trained_states  # DDP replicates
    bf16 = plan_memory(PlanInputs(**{**BASE.__dict__, "mixed_precision": "bf16", "teacher_dtype": "bfloat16"}))
    assert bf16.activations == p.activations // 2 and bf16.teacher == p.teacher // 2
    ckpt = plan_memory(PlanInputs(**{**BASE.__dict__, "activation_checkpointing": True}))
    assert ckpt.activations == 3 * per_block * (2 * 4 + 34) * 2 < p.activations
    no_gan = plan_memory(PlanInputs(**{**BASE.__dict__, "gan": False}))
    assert no_gan.activations * 3 == p.activations


def test_a_plan_that_does_not_fit_names_the_switches():
    big = PlanInputs(params=2_000_000_000, layers=24, hidden=1536, image_tokens=4096, text_tokens=333, batch=4,
                     devices=8)  # fmt: skip
    with pytest.raises(PlanError) as e:
        check_fits(plan_memory(big), 80 * GIB)
    msg = str(e.value)
    assert "activation_checkpointing: true" in msg and "fsdp.yaml" in msg and "mixed_precision: bf16" in msg
    check_fits(plan_memory(BASE), 80 * GIB)  # fits: no error


def test_cli_plan(tiny_pipeline_dir):
    from fewstep.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["distill", str(tiny_pipeline_dir), "--plan", "--device-memory", "64"])
    assert ok.exit_code == 0, ok.output
    assert "trained states" in ok.output and "fits in 64.0 GiB" in ok.output
    tight = runner.invoke(app, ["distill", str(tiny_pipeline_dir), "--plan", "--device-memory", "0.1"])
    assert tight.exit_code == 1 and "activation_checkpointing" in tight.output
    bad = runner.invoke(app, ["distill", str(tiny_pipeline_dir), "--plan", "--strategy", "zero3"])
    assert bad.exit_code == 2 and "allowed: ddp, fsdp" in bad.output
    no_out = runner.invoke(app, ["distill", str(tiny_pipeline_dir)])
    assert no_out.exit_code == 2 and "-o/--output" in no_out.output
