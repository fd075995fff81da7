"""The GPU check (issue 21), one prepared run for a lent CUDA machine (<= 8 minutes on an H200).

(a) SD3.5-Medium-architecture distillation iterations (random weights: `fewstep.zoo.sd35_medium`)
    with fewstep's own losses: seconds per trajectory-guidance, distribution-matching (fake score
    every iteration, the student every `critic_ratio`) and GAN iteration, and the peak memory, at
    512 and 1024 px, activation checkpointing off and on, bf16 autocast with float32 masters and a
    bf16 teacher (the `hardware:` block's settings);
(b) `fewstep distill --plan`'s estimate for each configuration next to the measured peak;
(c) the 4-step student vs the 28-step CFG teacher at 1024 px, bf16, the student's transformer
    `torch.compile`d, with the cosine of the bf16 student's output against float32.

Text conditioning is random tensors of the real shapes (77 CLIP + 256 T5 tokens): the trainer
caches encoder outputs, so encoders are not part of an iteration.

    python benchmarks/gpu_check.py --out gpu.json            # on the GPU machine
    python benchmarks/gpu_check.py --smoke                    # tiny widths, any device (a CI check)
    python benchmarks/gpu_check.py --plan-only                # the plan's table alone (no device needed)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import time

import torch

from fewstep.distill.dmd import dm_direction, dm_loss, fake_score_loss, generator_point
from fewstep.distill.gan import DiscriminatorHeads, discriminate, discriminator_loss, generator_adv_loss
from fewstep.distill.plan import count_parameters, plan_inputs, plan_memory
from fewstep.distill.trajectory_guidance import trajectory_guidance_loss

TIMESTEPS = [1.0, 0.9, 0.75, 0.5, 0.0]
SMOKE = dict(num_layers=2, num_attention_heads=2, attention_head_dim=16, caption_projection_dim=32,
             joint_attention_dim=64, pooled_projection_dim=32, dual_attention_layers=(0,))  # fmt: skip


def transformer(config: dict, device, dtype=torch.float32):
    from diffusers import SD3Transformer2DModel

    with torch.device(device):
        return SD3Transformer2DModel(**config).to(dtype)


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_reset(device) -> None:
    import gc

    gc.collect()  # the previous row's models and optimizer states
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device) -> float | None:
    return torch.cuda.max_memory_allocated() / 1024**3 if device.type == "cuda" else None


def timed(fn, device, repeats: int) -> float:
    fn()  # warm-up (kernels, allocator)
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def training_row(config: dict, res: int, batch: int, ckpt: bool, device, repeats: int, text: int) -> dict:
    """Seconds per iteration of each phase and the peak memory, with the plan beside it."""
    peak_reset(device)
    teacher = transformer(config, device, torch.bfloat16).requires_grad_(False)
    student = transformer(config, device).train()
    fake = copy.deepcopy(student)
    if ckpt:
        student.enable_gradient_checkpointing()
        fake.enable_gradient_checkpointing()
    hidden = config["num_attention_heads"] * config["attention_head_dim"]
    heads = DiscriminatorHeads(hidden, (1,)).to(device)
    fused = device.type == "cuda"
    opt_s = torch.optim.AdamW(student.parameters(), 1e-5, fused=fused or None)
    opt_f = torch.optim.AdamW([*fake.parameters(), *heads.parameters()], 1e-4, fused=fused or None)
    side = res // 8
    ch = config.get("in_channels", 16)
    states = torch.randn(batch, len(TIMESTEPS), ch, side, side, device=device)
    cond = (torch.randn(batch, text, config["joint_attention_dim"], device=device),
            torch.randn(batch, config["pooled_projection_dim"], device=device))  # fmt: skip
    uncond = (torch.zeros_like(cond[0]), torch.zeros_like(cond[1]))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)

    def tg():
        with autocast:
            loss = trajectory_guidance_loss(student, states, torch.randint(0, 4, (batch,)), TIMESTEPS, cond)
        opt_s.zero_grad(set_to_none=True)
        loss.backward()
        opt_s.step()

    def critic(gan: bool):
        x0 = states[:, -1]
        with autocast:
            loss = fake_score_loss(fake, x0, cond, TIMESTEPS, 3.0, True)
            if gan:
                t = torch.rand(batch, device=device)
                loss = loss + discriminator_loss(discriminate(fake, heads, x0, t, cond),
                                                 discriminate(fake, heads, states[:, -2], t, cond))  # fmt: skip
        opt_f.zero_grad(set_to_none=True)
        loss.backward()
        opt_f.step()

    def generator(gan: bool):
        with autocast:
            x, t, x0 = generator_point(student, states[:, 0], 1, TIMESTEPS, cond, True, 3.0)
            g = dm_direction(fake, teacher, x, t, cond, uncond, 2.0)
            loss = dm_loss(x, g)
            if gan:
                loss = loss + 0.2 * generator_adv_loss(discriminate(fake, heads, x0, t, cond))
        opt_s.zero_grad(set_to_none=True)
        loss.backward()
        opt_s.step()

    row = {"resolution": res, "batch": batch, "checkpointing": ckpt}
    row["tg_s"] = timed(tg, device, repeats)
    critic_s = timed(lambda: critic(False), device, repeats)
    gen_s = timed(lambda: generator(False), device, repeats)
    row["dm_s"] = critic_s + gen_s / 5  # critic ratio 5: the student updates every 5th iteration
    row["gan_s"] = timed(lambda: critic(True), device, repeats) + timed(lambda: generator(True), device, repeats) / 5
    row["peak_gib"] = peak_gib(device)
    plan = plan_memory(plan_inputs(config, res, text, batch, mixed_precision="bf16", teacher_dtype="bfloat16",
                                   activation_checkpointing=ckpt, gan=True))  # fmt: skip
    row["plan_gib"] = plan.total / 1024**3
    return row


@torch.no_grad()
def latency_rows(config: dict, res: int, device, text: int, repeats: int) -> dict:
    """4-step student (bf16, torch.compile) vs 28-step CFG teacher (bf16), transformer steps only."""
    fp32 = transformer(config, device).eval()
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    side = res // 8
    x = torch.randn(1, config.get("in_channels", 16), side, side, device=device)
    cond = (torch.randn(1, text, config["joint_attention_dim"], device=device),
            torch.randn(1, config["pooled_projection_dim"], device=device))  # fmt: skip

    def run(model, steps: int, cfg: bool, dtype):
        xs, c = x.to(dtype), tuple(t.to(dtype) for t in cond)
        batch = 2 if cfg else 1
        xs, c = xs.repeat(batch, 1, 1, 1), tuple(t.repeat(batch, *[1] * (t.dim() - 1)) for t in c)
        for i in range(steps):
            t = torch.full((batch,), 1000.0 * (1 - i / steps), device=device, dtype=dtype)
            v = model(hidden_states=xs, timestep=t, encoder_hidden_states=c[0], pooled_projections=c[1]).sample
            xs = xs - v / steps
        return xs[:1].float()

    compiled = torch.compile(bf16) if device.type == "cuda" else bf16
    out = {"resolution": res}
    out["teacher_28_cfg_s"] = timed(lambda: run(bf16, 28, True, torch.bfloat16), device, 1)
    out["student_4_compiled_s"] = timed(lambda: run(compiled, 4, False, torch.bfloat16), device, repeats)
    ref, got = run(fp32, 4, False, torch.float32).flatten(), run(compiled, 4, False, torch.bfloat16).flatten()
    out["student_bf16_vs_fp32_cosine"] = float(torch.nn.functional.cosine_similarity(ref, got, dim=0))
    out["speedup"] = out["teacher_28_cfg_s"] / out["student_4_compiled_s"]
    return out


def print_plans(batch: int) -> None:
    """The plan per device for SD3.5-Medium: resolution x checkpointing x (1 device, 8 with FSDP)."""
    from fewstep.zoo.sd35_medium import SD35Config

    config = SD35Config().transformer
    params = count_parameters(config)
    print(f"SD3.5-Medium transformer: {params / 1e9:.3f} B parameters; batch {batch} per device, bf16 autocast, "
          "bf16 teacher, GAN heads")  # fmt: skip
    print("| px | checkpointing | devices | trained states GiB | teacher GiB | activations GiB | total GiB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for res in (512, 1024):
        for ckpt in (False, True):
            for devices, strategy in ((1, "ddp"), (8, "fsdp")):
                plan = plan_memory(plan_inputs(
                    config, res, 333, batch, params, devices=devices, strategy=strategy, mixed_precision="bf16",
                    teacher_dtype="bfloat16", activation_checkpointing=ckpt))  # fmt: skip
                g = dict(plan.rows())
                print(f"| {res} | {'on' if ckpt else 'off'} | {devices} ({strategy}) | {g['trained states']:.1f} | "
                      f"{g['teacher']:.1f} | {g['activations']:.1f} | {g['total']:.1f} |")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny widths and 64 px: checks the script anywhere")
    ap.add_argument("--resolutions", type=int, nargs="*", default=[512, 1024])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--plan-only", action="store_true", help="print the memory plan for SD3.5-Medium and exit")
    a = ap.parse_args()
    if a.plan_only:
        print_plans(a.batch)
        return
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if a.smoke:
        config, resolutions, text, batch = {**SMOKE}, [64], 8, 2
    else:
        from fewstep.zoo.sd35_medium import SD35Config

        config, resolutions, text, batch = SD35Config().transformer, a.resolutions, 333, a.batch
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items()}
    result = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "training": [], "latency": []}  # fmt: skip
    for res in resolutions:
        for ckpt in (False, True):
            with contextlib.suppress(torch.OutOfMemoryError):
                row = training_row(config, res, batch, ckpt, device, a.repeats, text)
                result["training"].append(row)
                print(json.dumps(row), flush=True)
    result["latency"].append(latency_rows(config, max(resolutions), device, text, a.repeats))
    print(json.dumps(result["latency"][-1]), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
