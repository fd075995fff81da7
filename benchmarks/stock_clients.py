"""Does a stock client sample a fewstep student right? Images of `zoo:shapes-flash` on the same
noise from:

- `fewstep`: fewstep's own Euler sampler on the student's recorded timesteps (the reference);
- `diffusers-stock`: `StableDiffusion3Pipeline.from_pretrained(student)(prompt,
  num_inference_steps=4, guidance_scale=1.0)` — no `sigmas=`, only the student's scheduler config;
- `diffusers-sigmas`: the same with the recorded `sigmas=`;
- `diffusers-teacher-scheduler`: the stock call with the teacher's scheduler config, which is what
  students shipped before the stock schedule (the mismatch a user got);
- `diffusers-default-guidance`: the stock call without `guidance_scale` (diffusers' default 7 turns
  CFG on: a distilled student needs guidance 1).

    python benchmarks/stock_clients.py [--model zoo:shapes-flash] [--images 64] [--quality 1000] [--json]

PSNR of each against `fewstep`; with `--quality N` also FID and alignment of the `fewstep` and
`diffusers-stock` images over N held-out prompts (the quality cost of the stock schedule).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def isa() -> str:
    try:
        from fewstep.cpu.isa import effective

        here = effective()
        return here.name if here else platform.machine()
    except Exception:  # noqa: BLE001 - informational only
        return subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="zoo:shapes-flash", help="a student: zoo name or directory")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--quality", type=int, default=0, help="also score N held-out prompts (FID, alignment)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

    from fewstep.families import family_for
    from fewstep.sampling import GenerationConfig, initial_noise, sample_torch, sampling_for
    from fewstep.sd3_pipeline import resolve_model, t5_length
    from fewstep.student import student_info

    torch.manual_seed(0)
    student = resolve_model(a.model)
    teacher = resolve_model("zoo:shapes")
    info = student_info(student)
    pipe = StableDiffusion3Pipeline.from_pretrained(str(student))
    pipe.set_progress_bar_config(disable=True)
    evaluation = family_for(student).evaluation()
    n = max(a.images, a.quality)
    prompts, specs = evaluation.held_out(n)
    noise = initial_noise(pipe, 0, n)
    res = pipe.vae_scale_factor * pipe.transformer.config.sample_size
    common = dict(height=res, width=res, max_sequence_length=t5_length(pipe), output_type="np")

    def diffusers(count: int, batch: int = 64, **kw) -> np.ndarray:
        out = []
        for i in range(0, count, batch):
            out.append(pipe(prompts[i : i + batch], latents=noise[i : i + batch], **common, **kw).images)
        return np.concatenate(out).astype(np.float32)

    def ours(count: int, batch: int = 64) -> np.ndarray:
        sampling = sampling_for(pipe, student)
        cfg = GenerationConfig(steps=sampling.steps, guidance=1.0, sigmas=sampling.call_sigmas)
        return np.concatenate(
            [sample_torch(pipe, prompts[i : i + batch], noise[i : i + batch], cfg) for i in range(0, count, batch)]
        )

    k = info["steps"]
    ref = ours(a.images)
    rows = {
        "diffusers-stock": diffusers(a.images, num_inference_steps=k, guidance_scale=1.0),
        "diffusers-sigmas": diffusers(a.images, sigmas=info["sigmas"], guidance_scale=1.0),
        "diffusers-default-guidance": diffusers(a.images, num_inference_steps=k),
    }
    own = pipe.scheduler
    pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(str(teacher / "scheduler"))
    rows["diffusers-teacher-scheduler"] = diffusers(a.images, num_inference_steps=k, guidance_scale=1.0)
    pipe.scheduler = own
    result = {
        "isa": isa(),
        "images": a.images,
        "timesteps_student": [round(1000 * t, 3) for t in info["timesteps"][:-1]],
        "psnr_vs_fewstep_db": {name: round(psnr(img, ref), 2) for name, img in rows.items()},
    }
    print(f"{a.images} images of {a.model}, same noise; PSNR against fewstep's sampler ({result['isa']}):")
    for name, value in result["psnr_vs_fewstep_db"].items():
        print(f"  {name:30s} {value:8.2f} dB")
    if a.quality:
        q_ours = evaluation.score(ours(a.quality), specs[: a.quality])
        q_stock = evaluation.score(diffusers(a.quality, num_inference_steps=k, guidance_scale=1.0), specs[: a.quality])
        result["quality"] = {
            name: {"fid": round(q["fid"], 3), "alignment": round(q["alignment"], 4)}
            for name, q in (("fewstep", q_ours), ("diffusers-stock", q_stock))
        }
        print(f"quality over {a.quality} held-out prompts:", json.dumps(result["quality"]))
    if a.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
