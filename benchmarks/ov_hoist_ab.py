"""A bundle against its twin with the adaLN modulation hoisted (`restructure.hoist_modulation`): the
denoising loop of one generation, interleaved round by round.

    python benchmarks/ov_hoist_ab.py WHOLE HOISTED [--rounds 6] [--json]

Both bundles are opened with fewstep's runtime. Each round encodes one prompt (not timed), then
times what a generation spends between encoding and decoding: `Bundle.condition` (the hoisted
bundle's one modulation call for every step; nothing in the whole bundle) and the K transformer
calls, from the same seeded noise. Bundles alternate which goes first. The table gives each
bundle's median loop, the median of the per-round ratios hoisted / whole and in how many rounds
the hoisted loop was faster; per step, the hoisted bundle's body call and its modulation call.
These VMs' speed drifts by up to 2x within minutes, so only the paired ratios are evidence.

Agreement: the final latents and decoded images of the two bundles (same prompt and noise):
cosine of the latents and PSNR of the images. The hoist is exact arithmetic; what differs is
the quantization of the split graph (the modulation's own int8 weights, the body's calibration).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from timing import log_component_calls

PROMPT = "a photograph of an astronaut riding a horse on the moon"


def denoise(bundle, cond: dict, seed: int) -> np.ndarray:
    """The sampling loop of `Bundle.generate` for one image, `condition` included."""
    from fewstep.runtime.noise import initial_noise
    from fewstep.runtime.sampler import sample

    p = bundle.pipeline
    cond = bundle.condition(cond)
    return sample(initial_noise(seed, 1, p.latent_shape), list(p.sigmas), lambda x, t: bundle.velocity(x, t, cond))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("whole", type=Path)
    ap.add_argument("hoisted", type=Path)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    from fewstep.cpu.isa import detect
    from fewstep.gates.metrics import cosine, psnr
    from fewstep.runtime.bundle import Bundle
    from fewstep.runtime.manifest import MODULATION

    bundles = {"whole": Bundle.open(a.whole), "hoisted": Bundle.open(a.hoisted)}
    if bundles["whole"].hoisted or not bundles["hoisted"].hoisted:
        raise SystemExit("give the whole bundle first, then the hoisted one (restructure.hoist_modulation)")
    conds = {k: b.encode([PROMPT]) for k, b in bundles.items()}
    latents = {k: denoise(b, conds[k], seed=0) for k, b in bundles.items()}  # also the warm-up
    logs = {k: log_component_calls(b) for k, b in bundles.items()}
    loops: dict[str, list[float]] = {k: [] for k in bundles}
    for r in range(a.rounds):
        order = list(bundles) if r % 2 == 0 else list(bundles)[::-1]
        for k in order:
            start = time.perf_counter()
            denoise(bundles[k], conds[k], seed=0)
            loops[k].append(time.perf_counter() - start)
    steps = len(bundles["whole"].pipeline.sigmas) - 1
    ratios = [h / w for h, w in zip(loops["hoisted"], loops["whole"])]
    images = {k: b.decode(latents[k]) for k, b in bundles.items()}
    result = {
        "isa": isa.name if (isa := detect()) else None,
        "rounds": a.rounds,
        "steps": steps,
        "whole_loop_s": statistics.median(loops["whole"]),
        "hoisted_loop_s": statistics.median(loops["hoisted"]),
        "whole_loops_s": loops["whole"],
        "hoisted_loops_s": loops["hoisted"],
        "ratio_median": statistics.median(ratios),
        "hoisted_faster_in": sum(x < 1 for x in ratios),
        "whole_step_s": statistics.median(logs["whole"]["transformer"]),
        "hoisted_body_s": statistics.median(logs["hoisted"]["transformer"]),
        "hoisted_modulation_s": statistics.median(logs["hoisted"][MODULATION]),
        "latent_cosine": cosine(latents["hoisted"], latents["whole"]),
        "image_psnr_db": psnr(images["hoisted"], images["whole"]),
    }
    print(f"{steps}-step denoising loop, {a.rounds} interleaved rounds (ISA {result['isa']})")
    print("| bundle | median loop s | per step |")
    print("| --- | --- | --- |")
    print(f"| whole | {result['whole_loop_s']:.3f} | transformer {result['whole_step_s']:.3f} s |")
    print(
        f"| hoisted | {result['hoisted_loop_s']:.3f} | body {result['hoisted_body_s']:.3f} s, "
        f"+ modulation {result['hoisted_modulation_s']:.3f} s once per generation |"
    )
    print(
        f"hoisted / whole: median paired ratio {result['ratio_median']:.3f}, faster in "
        f"{result['hoisted_faster_in']} of {a.rounds}; latents cosine {result['latent_cosine']:.6f}, "
        f"images PSNR {result['image_psnr_db']:.1f} dB"
    )
    if a.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
