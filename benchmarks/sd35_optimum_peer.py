"""The optimum-intel peer of benchmarks/sd35_medium.py; runs inside its own virtual environment.

Exports a local diffusers SD3 directory with `OVStableDiffusion3Pipeline` (fp32 weights, or
optimum-intel's int8 weight mode) with `optimum-cli export openvino`,
and times `--steps` steps at guidance 1 (a distilled student), with optimum-intel's default
dynamic shapes (its static `reshape` assumes a CFG batch of 2). Writes one JSON file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--mode", choices=("fp32", "int8"), required=True)
    ap.add_argument("--resolution", type=int, required=True)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--prompt", default="a photo of a red fox")
    ap.add_argument("--export-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--export-only", action="store_true")
    a = ap.parse_args()

    import optimum.intel
    from optimum.intel import OVStableDiffusion3Pipeline

    ov_config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}  # same arithmetic as fewstep
    export_dir = Path(a.export_dir)
    start = time.perf_counter()
    if not (export_dir / "model_index.json").exists():
        # the documented CLI path; a local directory needs the task named
        shutil.rmtree(export_dir, ignore_errors=True)
        cli = Path(sys.executable).with_name("optimum-cli")
        cmd = [str(cli), "export", "openvino", "--model", a.model, "--task", "text-to-image"]
        cmd += ["--weight-format", a.mode, "--disable-convert-tokenizer", str(export_dir)]
        subprocess.run(cmd, check=True)
    export_s = time.perf_counter() - start
    if a.export_only:
        return
    start = time.perf_counter()
    # Dynamic shapes, optimum-intel's default: its static `reshape` doubles the transformer batch
    # for CFG, which a guidance-1 student does not run.
    pipe = OVStableDiffusion3Pipeline.from_pretrained(str(export_dir), compile=True, ov_config=ov_config)
    load_s = time.perf_counter() - start

    log: dict[str, list[float]] = {}
    for name in ("text_encoder", "text_encoder_2", "text_encoder_3", "transformer", "vae_decoder"):
        comp = getattr(pipe, name, None)
        if comp is None or not hasattr(comp, "forward"):
            continue
        original = comp.forward

        def forward(*args, _f=original, _n=name, **kwargs):
            t0 = time.perf_counter()
            out = _f(*args, **kwargs)
            log.setdefault(_n, []).append(time.perf_counter() - t0)
            return out

        comp.forward = forward

    def generate() -> None:
        pipe(
            a.prompt,
            num_inference_steps=a.steps,
            guidance_scale=1.0,
            height=a.resolution,
            width=a.resolution,
            max_sequence_length=256,
            output_type="np",
        )

    generate()  # warm-up
    e2e = []
    for _ in range(a.repeats):
        log.clear()
        t0 = time.perf_counter()
        generate()
        e2e.append(time.perf_counter() - t0)
    size = sum(f.stat().st_size for f in export_dir.rglob("*") if f.is_file()) / 2**20
    result = {
        "e2e_s": statistics.median(e2e),
        "e2e_all_s": e2e,
        "step_s": statistics.median(log["transformer"]) if log.get("transformer") else float("nan"),
        "components_s": {k: sum(v) for k, v in log.items()},
        "export_s": export_s,
        "load_s": load_s,
        "peak_rss_mb": peak_rss_mb(),
        "size_mb": size,
        "optimum_intel_version": getattr(optimum.intel, "__version__", "?"),
        "mode": "optimum-cli export openvino --weight-format " + a.mode,
    }
    Path(a.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
