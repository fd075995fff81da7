"""OpenVINO static int8 of a real-width SD3.5-Medium transformer: peak memory and speed per NNCF mode.

    python benchmarks/ov_ptq_memory.py [--layers 4] [--json]

Builds the SD3.5-Medium transformer at its real width with `--layers` blocks (random weights,
256 px, 77 CLIP tokens + 1 null token), converts it to an fp32 IR, and quantizes it with
fewstep's OpenVINO int8 handler, each mode in a fresh process (peak RSS = that process's VmHWM,
reading the IR included):
- `full`: NNCF PTQ of the fp32 model (SmoothQuant, fast bias correction);
- `weights-first`: int8 per-channel weights first, then NNCF PTQ of the activations;
- `int8-weights`: weight compression alone (activations quantized on the fly at run time).
Then, in this process, each result's transformer latency (median of 5 after a warm-up, the
openvino-cpu target's compile settings) and output cosine against the fp32 IR. Peak RSS is also
given per GB of fp32 IR: the figure that says whether the 2.24 B transformer (9 GB) fits a machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from timing import median_seconds

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("hidden_states", "encoder_hidden_states", "pooled_projections", "timestep")
MODES = ("full", "weights-first", "int8-weights")
TEXT_TOKENS = 78  # 77 CLIP tokens + the collapsed null token
CALIBRATION = 4


def _feeds(seed: int, resolution: int = 256) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    side = resolution // 8  # the VAE's latent grid
    shapes = {NAMES[0]: (1, 16, side, side), NAMES[1]: (1, TEXT_TOKENS, 4096), NAMES[2]: (1, 2048)}
    feeds = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    feeds[NAMES[3]] = np.array([1000.0 * (seed % 4 + 1) / 4], np.float32)  # the student's timesteps
    return feeds


def build_ir(layers: int, work: Path, resolution: int = 256) -> Path:
    xml = work / (f"transformer-{layers}.xml" if resolution == 256 else f"transformer-{layers}-{resolution}px.xml")
    if xml.exists():
        return xml
    import openvino as ov
    import torch

    from fewstep.zoo.sd35_medium import SD35Config, build_transformer

    dual = tuple(range(min(13, layers) // 2))  # SD3.5-Medium: dual attention in about half the blocks
    cfg = SD35Config(resolution=resolution).scaled(transformer={"num_layers": layers, "dual_attention_layers": dual})
    torch.manual_seed(0)
    transformer = build_transformer(cfg).eval()

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.t = transformer

        def forward(self, x, c, p, t):
            return self.t(hidden_states=x, encoder_hidden_states=c, pooled_projections=p, timestep=t)[0]

    example = tuple(torch.from_numpy(v) for v in _feeds(0, resolution).values())
    with torch.no_grad():
        model = ov.convert_model(Wrapped(), example_input=example)
    for port, name in zip(model.inputs, NAMES):
        port.get_tensor().set_names({name})
    tmp = xml.with_name(f".{xml.name}")
    ov.save_model(model, str(tmp), compress_to_fp16=False)
    tmp.with_suffix(".bin").replace(xml.with_suffix(".bin"))
    tmp.replace(xml)
    return xml


def worker(mode: str, xml: Path, out: Path) -> dict:
    from fewstep.quantize import Int8Config, WeightOnlyConfig, load_handlers, quantize_model
    from fewstep.runtime.memory import peak_rss_mb
    from fewstep.targets.base import ComponentIO

    cfg = WeightOnlyConfig(scheme="int8-weights") if mode == "int8-weights" else Int8Config(mode=mode)
    load_handlers("openvino")
    io = ComponentIO("transformer", (), ("sample",))
    start = time.perf_counter()
    result = quantize_model("openvino", xml, io, cfg, [_feeds(i + 1) for i in range(CALIBRATION)], out)
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb(), "xml": str(result)}


def timed(xml: Path, ref: np.ndarray | None) -> tuple[float, np.ndarray, float]:
    import openvino as ov

    from fewstep.targets.openvino_cpu import dynamic_quant_group

    core = ov.Core()
    model = core.read_model(str(xml))
    config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    if (group := dynamic_quant_group(model)) is not None:
        config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = str(group)
    request = core.compile_model(model, "CPU", config).create_infer_request()
    feeds = _feeds(9)
    out = np.array(request.infer(feeds)[0])
    seconds = median_seconds(lambda: request.infer(feeds), repeats=5)
    ref = out if ref is None else ref
    cosine = float((out * ref).sum() / np.linalg.norm(out) / np.linalg.norm(ref))
    return seconds, out, cosine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "ov-ptq-memory")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    xml = build_ir(args.layers, args.work)
    if args.worker:
        out = args.work / f"{args.layers}-{args.worker}"
        out.mkdir(exist_ok=True)
        print(json.dumps(worker(args.worker, xml, out)))
        return
    fp32_gb = xml.with_suffix(".bin").stat().st_size / 1e9
    results = {}
    for mode in MODES:
        cmd = [sys.executable, __file__, "--layers", str(args.layers), "--work", str(args.work), "--worker", mode]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{mode} failed:\n{proc.stderr[-3000:]}")
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    fp32_s, ref, _ = timed(xml, None)
    head = f"SD3.5-Medium transformer, {args.layers} real-width blocks: fp32 IR {fp32_gb:.2f} GB"
    print(f"\n{head}, {fp32_s * 1e3:.0f} ms")
    print("| mode | quantize s | peak RSS MB | peak RSS / fp32 IR | step ms | speed-up vs fp32 | cosine vs fp32 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for mode, r in results.items():
        seconds, _, cosine = timed(Path(r["xml"]), ref)
        r.update(step_s=seconds, cosine=cosine, rss_per_ir=r["peak_rss_mb"] / 1e3 / fp32_gb)
        print(
            f"| {mode} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | {r['rss_per_ir']:.2f}x | "
            f"{seconds * 1e3:.0f} | {fp32_s / seconds:.2f}x | {cosine:.5f} |"
        )
    full, first = results["full"], results["weights-first"]
    summary = {
        "rss_weights_first_vs_full": first["peak_rss_mb"] / full["peak_rss_mb"],
        "speed_weights_first_vs_full": full["step_s"] / first["step_s"],
        "speed_weights_first_vs_int8_weights": results["int8-weights"]["step_s"] / first["step_s"],
    }
    print(
        f"\nweights-first vs full: peak RSS {summary['rss_weights_first_vs_full']:.2f}x, speed "
        f"{summary['speed_weights_first_vs_full']:.2f}x; vs int8-weights: speed "
        f"{summary['speed_weights_first_vs_int8_weights']:.2f}x"
    )
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
