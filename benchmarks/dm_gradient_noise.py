"""Is the distribution-matching gradient less noisy with timestep sharing than with re-noising?

The paper's argument for timestep sharing is about the variance of the DM gradient estimate. This
measures it directly, at a fixed student and fake score (a distillation checkpoint), not through
training curves: for each mode it draws M independent estimates of the student's gradient (each
one DM generator step at the run's batch: fresh noise, prompts and backward-simulation depth k,
exactly as `DistillRun._dm_step` draws them, then the DM loss's gradient w.r.t. the student's
parameters) and reports

- `trace_cov`: the total variance tr Cov(g) = E||g - E g||^2 (unbiased, from running sums),
- `noise_to_signal`: tr Cov(g) / ||E g||^2 (the denominator unbiased too), which does not
  depend on the two modes' gradients having different scales (they estimate different objectives),
- `cv_norm`: the coefficient of variation of ||g|| (what the ablation table logged during runs),
  and the mean ||g|| per backward-simulation depth k (`norm_k<k>`), which shows where it comes from.

Every mode is measured with several draw seeds; mean and std over seeds are printed.

Usage: python benchmarks/dm_gradient_noise.py \
           --checkpoint runs/ablations/scheduler-grid/.work/distill/checkpoints/step_00000900 \
           --student-record runs/ablations/scheduler-grid/distill/fewstep_student.json [--draws 64] [--seeds 3] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from fewstep.distill.dmd import dm_direction, dm_loss, generator_point
from fewstep.distill.trainer import conditioning
from fewstep.sd3_pipeline import load_pipeline, resolve_model
from fewstep.zoo.family import ShapesFamily


def measure(student, fake, teacher, cond, rcfg: dict, sharing: bool, draws: int, seed: int, allowed: list[int]):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    ts, dm = rcfg["timesteps"], rcfg["config"]["distribution_matching"]
    shift, guidance = rcfg["config"]["shift"], rcfg["config"]["guidance"]
    interval = rcfg["config"]["guidance_interval"]
    params = [p for p in student.parameters() if p.requires_grad]
    total = torch.zeros(sum(p.numel() for p in params), dtype=torch.float64)
    sq, norms, ks = 0.0, [], []
    n_prompts = cond.student[0].shape[0]
    for _ in range(draws):
        idx = torch.from_numpy(rng.choice(n_prompts, size=dm["batch"], replace=False))
        s_cond = (cond.student[0][idx], cond.student[1][idx])
        t_cond = (cond.teacher[0][idx], cond.teacher[1][idx])
        uncond = (cond.uncond[0].expand(len(idx), -1, -1), cond.uncond[1].expand(len(idx), -1))
        noise = torch.randn((len(idx), *rcfg["latent_shape"]))
        k = int(rng.choice(allowed))
        x, t, _ = generator_point(student, noise, k, ts, s_cond, sharing, shift)
        g = dm_direction(fake, teacher, x, t, t_cond, uncond, guidance, interval)
        student.zero_grad(set_to_none=True)
        dm_loss(x, g).backward()
        flat = torch.cat([p.grad.reshape(-1).double() for p in params])
        total += flat
        sq += float(flat.square().sum())
        norms.append(float(flat.norm()))
        ks.append(k)
    mean = total / draws
    trace_cov = (sq - draws * float(mean.square().sum())) / (draws - 1)
    signal = float(mean.square().sum()) - trace_cov / draws  # unbiased ||E g||^2
    return {
        "trace_cov": trace_cov,
        "signal": signal,
        "noise_to_signal": trace_cov / signal if signal > 0 else float("inf"),
        "cv_norm": float(np.std(norms) / np.mean(norms)),
        **{f"norm_k{k}": float(np.mean([n for n, kk in zip(norms, ks) if kk == k])) for k in sorted(set(ks))},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, required=True, help="distill checkpoint with student/fake safetensors")
    ap.add_argument("--student-record", type=Path, required=True, help="the run's fewstep_student.json")
    ap.add_argument("--teacher", default="zoo:shapes")
    ap.add_argument("--draws", type=int, default=64)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=512)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rcfg = json.loads(args.student_record.read_text())
    pipe = load_pipeline(resolve_model(args.teacher))
    teacher = pipe.transformer.eval().requires_grad_(False)
    student, fake = copy.deepcopy(teacher), copy.deepcopy(teacher)
    student.load_state_dict(load_file(str(args.checkpoint / "student.safetensors")))
    fake.load_state_dict(load_file(str(args.checkpoint / "fake.safetensors")))
    student.train().requires_grad_(True)
    fake.eval()
    c = teacher.config
    rcfg["latent_shape"] = (c.in_channels, c.sample_size, c.sample_size)
    captions = ShapesFamily().training_prompts(args.prompts, seed=12345)
    cond = conditioning(pipe, captions, rcfg["config"]["t5_free"])
    allowed = list(range(rcfg["steps"]))
    rows = {}
    for mode, sharing in (("timestep sharing", True), ("re-noising (DMD2)", False)):
        per_seed = [
            measure(student, fake, teacher, cond, rcfg, sharing, args.draws, 1000 + s, allowed)
            for s in range(args.seeds)
        ]
        rows[mode] = {
            k: {
                "mean": float(np.mean([r[k] for r in per_seed])),
                "std": float(np.std([r[k] for r in per_seed], ddof=1)),
            }
            for k in per_seed[0]
        } | {"per_seed": per_seed}
        if not args.json:
            r = rows[mode]
            print(f"{mode:<20} noise/signal {r['noise_to_signal']['mean']:.3f} ± {r['noise_to_signal']['std']:.3f}  "
                  f"tr Cov {r['trace_cov']['mean']:.4g} ± {r['trace_cov']['std']:.2g}  "
                  f"CV |g| {r['cv_norm']['mean']:.3f} ± {r['cv_norm']['std']:.3f}", flush=True)  # fmt: skip
    out = {
        "checkpoint": str(args.checkpoint),
        "timesteps": rcfg["timesteps"],
        "draws": args.draws,
        "seeds": args.seeds,
        "batch": rcfg["config"]["distribution_matching"]["batch"],
        "modes": rows,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
