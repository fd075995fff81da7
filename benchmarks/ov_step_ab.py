"""Several bundles' transformer steps, interleaved: an A-B comparison the host's drift cannot skew.

    python benchmarks/ov_step_ab.py BUNDLE_A BUNDLE_B [...] [--rounds 8] [--json]

Each bundle is opened with fewstep's runtime (`Bundle.open`, so its transformer is compiled as
a generation compiles it: the manifest's inference precision, the runtime's properties) and its
transformer is called once per round, bundles in turn, on one image's inputs (random latents,
random CLIP tokens, the zero T5 slot as zeros: speed does not depend on the values). The table
gives each bundle's median step, and for every bundle after the first the median of the per-round
ratios to the first and in how many rounds it was faster (the order is reversed every other
round since the seventh session; earlier runs went in the given order). These VMs' speed drifts by up to 2x
within minutes, so only the paired ratios are evidence; the medians say where the host was.

Every bundle gets the same latents, timestep, pooled projection and CLIP tokens (its zero slot
may differ in length: 1 or m null tokens, or the full slot), so where the bundles are the same
model the cosine of each step's output against the first bundle's checks that they agree.

`--f32-reference` also runs each bundle's transformer at f32 (before the timed rounds, one at a
time, so no two 1024 px transformers are held at once) and gives the
cosine of the bundle's own step against it: what its inference precision (bf16) costs, apart from
its quantization.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np


def step_feeds(bundle, seed: int = 0) -> dict[str, np.ndarray]:
    """One image's transformer inputs, shaped as the manifest says (batch 1); the same values for
    every bundle of one model, except the zero T5 slot's length."""
    pipeline = bundle.manifest.pipeline
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in bundle.manifest.components["transformer"].io.inputs:
        dims = [1 if isinstance(d, str) else int(d) for d in spec.shape]
        if spec.name == "encoder_hidden_states" and not pipeline.t5:  # CLIP tokens, then the zero slot
            clip = rng.standard_normal([*dims[:1], dims[1] - pipeline.t5_length, *dims[2:]])
            slot = np.zeros([*dims[:1], pipeline.t5_length, *dims[2:]])
            feeds[spec.name] = np.concatenate([clip, slot], 1).astype(np.float32)
        else:
            feeds[spec.name] = rng.standard_normal(dims).astype(np.float32)
    if "timestep" in feeds:  # a hoisted bundle's transformer takes the modulation instead
        feeds["timestep"] = np.full(feeds["timestep"].shape, 500.0, np.float32)
    return feeds


def f32_step(path: Path) -> np.ndarray:
    """The bundle's transformer alone, opened at f32 (`Bundle.open(inference_precision=, components=)`),
    on `step_feeds`' inputs."""
    from fewstep.runtime.bundle import Bundle

    bundle = Bundle.open(path, inference_precision="f32", components=["transformer"])
    return bundle.run_component("transformer", step_feeds(bundle))["sample"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", type=Path, nargs="+")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--f32-reference", action="store_true", help="cosine against the IR compiled at f32")
    a = ap.parse_args()
    from fewstep.cpu.isa import detect
    from fewstep.gates.metrics import cosine
    from fewstep.runtime.bundle import Bundle

    references = {path: f32_step(path) for path in a.bundles} if a.f32_reference else {}
    runs, outputs = {}, {}
    for path in a.bundles:
        bundle = Bundle.open(path)
        feeds = step_feeds(bundle)
        outputs[path] = bundle.run_component("transformer", feeds)["sample"]  # also the warm-up
        runs[path] = (bundle, feeds)
    times: dict[Path, list[float]] = {p: [] for p in a.bundles}
    for r in range(a.rounds):  # the order reversed every other round: no bundle always runs first
        for path, (bundle, feeds) in list(runs.items())[:: 1 if r % 2 == 0 else -1]:
            start = time.perf_counter()
            bundle.run_component("transformer", feeds)
            times[path].append(time.perf_counter() - start)
    isa = detect()
    first = a.bundles[0]
    print(f"ISA: {isa.name if isa else 'unknown'}; {a.rounds} interleaved rounds")
    extra = " cosine vs itself at f32 |" if references else ""
    head = "| bundle | text tokens | step s (median) | rounds s | median ratio to the first | faster in | cosine |"
    print(head + extra)
    print("| --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if references else ""))
    rows = []
    for path, ts in times.items():
        seq = runs[path][1]["encoder_hidden_states"].shape[1]
        ratios = [t / f for t, f in zip(ts, times[first])]
        wins = sum(r < 1 for r in ratios)
        ratio = statistics.median(ratios)
        cells = [path.name, str(seq), f"{statistics.median(ts):.3f}", ", ".join(f"{t:.2f}" for t in ts)]
        cos = cosine(outputs[path], outputs[first])
        cells += ["", "", ""] if path == first else [f"{ratio:.3f}", f"{wins} of {a.rounds}", f"{cos:.6f}"]
        row = {"bundle": str(path), "text_tokens": seq, "step_s": ts, "median_ratio": ratio, "wins": wins}
        row["cosine"] = cos
        if references:
            row["cosine_vs_f32"] = cosine(outputs[path], references[path])
            cells.append(f"{row['cosine_vs_f32']:.6f}")
        print("| " + " | ".join(cells) + " |")
        rows.append(row)
    if a.json:
        print(json.dumps({"isa": isa.name if isa else None, "rows": rows}))


if __name__ == "__main__":
    main()
