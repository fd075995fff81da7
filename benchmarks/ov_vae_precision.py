"""A bundle's VAE decoder against an fp32-weights one from the same model, each at bf16 and at f32:
distance to torch, distance to its own f32 run, and decode time interleaved.

    python benchmarks/ov_vae_precision.py MODEL BUNDLE_VAE_IR [--work runs/vae-ab] [--rounds 8] [--latents 2]

MODEL is the diffusers model the bundle was built from; BUNDLE_VAE_IR its `components/vae_decoder.xml`
(an int8 one, say). The fp32-weights decoder is exported from MODEL at the same static shape
(`export_onnx` + `OpenVINOCPU.build`, cached under --work). On random latents each of the four
(IR, inference precision) pairs is compared with the torch VAE and with the same IR at f32, then
all four decode one latent in turn per round, the order reversed every other round; the table
gives medians and the paired ratio to the bundle's decoder at bf16. These VMs' speed drifts, so
only the paired ratios are evidence.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from pathlib import Path

import numpy as np

HEADER = "| decoder | precision | against torch | against its own f32 run | decode s | paired ratio | faster in |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("vae_ir", type=Path)
    ap.add_argument("--work", type=Path, default=Path("runs/vae-ab"))
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--latents", type=int, default=2)
    a = ap.parse_args()
    from fewstep.compile.export import export_onnx
    from fewstep.components import pipeline_components
    from fewstep.sd3_pipeline import load_pipeline
    from fewstep.targets.openvino_cpu import OpenVINOCPU

    pipe = load_pipeline(a.model, drop_t5=True)
    vae = pipeline_components(pipe, batch=1)["vae_decoder"]
    del pipe
    gc.collect()
    fp32 = a.work / "fp32" / "vae_decoder.xml"
    if not fp32.exists():
        fp32.parent.mkdir(parents=True, exist_ok=True)
        io = export_onnx(vae, a.work / "vae_decoder.onnx", static_batch=1)
        OpenVINOCPU().build(a.work / "vae_decoder.onnx", io, "fp32", fp32.parent)
    rng = np.random.default_rng(0)
    latents = [rng.standard_normal((1, *vae.example[0].shape[1:])).astype(np.float32) for _ in range(a.latents)]
    compare(vae.module, {f"bundle ({a.vae_ir.parent.parent.name})": a.vae_ir, "fp32 weights": fp32}, latents, a.rounds)


def compare(module, irs: dict, latents: list[np.ndarray], rounds: int) -> None:
    """Print the table: each IR at bf16 and f32 against `module` (torch) and against its own f32
    run, and its decode time, interleaved with the others; ratios are to the first IR at bf16."""
    import openvino as ov
    import torch

    from fewstep.gates.metrics import cosine

    with torch.no_grad():
        ref = [module(torch.from_numpy(x)) for x in latents]
    ref = [(r[0] if isinstance(r, tuple) else r).numpy() for r in ref]
    core = ov.Core()
    compiled = {}
    for name, xml in irs.items():
        for hint in ("bf16", "f32"):
            config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
            compiled[(name, hint)] = core.compile_model(str(xml), "CPU", config)
    outs = {k: [c({0: x})[0] for x in latents] for k, c in compiled.items()}
    keys = list(compiled)
    times: dict = {k: [] for k in keys}
    for r in range(rounds):
        for k in keys if r % 2 == 0 else keys[::-1]:
            start = time.perf_counter()
            compiled[k]({0: latents[0]})
            times[k].append(time.perf_counter() - start)
    base = times[keys[0]]
    print(HEADER)
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, hint in keys:
        torch_cos = ", ".join(f"{cosine(o, r):.6f}" for o, r in zip(outs[(name, hint)], ref))
        twin_cos = ", ".join(f"{cosine(o, t):.6f}" for o, t in zip(outs[(name, hint)], outs[(name, "f32")]))
        ratios = [t / b for t, b in zip(times[(name, hint)], base)]
        faster = f"{sum(x < 1 for x in ratios)} of {len(ratios)}" if (name, hint) != keys[0] else ""
        print(
            f"| {name} | {hint} | {torch_cos} | {twin_cos} | {statistics.median(times[(name, hint)]):.2f} "
            f"| {statistics.median(ratios):.3f} | {faster} |"
        )


if __name__ == "__main__":
    main()
