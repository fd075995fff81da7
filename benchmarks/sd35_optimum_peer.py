"""The optimum-intel peer of benchmarks/sd35_medium.py; runs inside its own virtual environment.

Exports a local diffusers SD3 directory with `OVStableDiffusion3Pipeline` and times `--steps`
steps at guidance 1 (a distilled student), with optimum-intel's default dynamic shapes (its
static `reshape` assumes a CFG batch of 2). Writes one JSON file. Modes:

- `fp32`, `int8`, `int4`: `optimum-cli export openvino --weight-format <mode>` (weight-only; the
  int8/int4 MatMuls run on activations quantized on the fly by the CPU plugin);
- `int8-hybrid`: optimum-intel's hybrid mode for diffusion models,
  `OVWeightQuantizationConfig(bits=8, quant_method="hybrid", num_samples=N)`: int8 weights in every
  MatMul of every component, and static int8 activations (calibrated) on the transformer's other
  ops, attention's activation-activation MatMuls among them;
- `int8-full`: optimum-intel's full quantization of the transformer (`--quant-mode int8`,
  `OVQuantizationConfig`: static W8A8, as fewstep's `int8`), int8 weights elsewhere.

The calibrated modes calibrate on the `--calibration-prompts` (a JSON list: fewstep's own
calibration prompts, same count) run through the fp32 export at the deployed sampling (`--steps`
steps, guidance 1): `OVQuantizer.quantize(calibration_dataset=...)`. optimum's `dataset=[prompts]`
shortcut would run its pipeline at the default 28 steps with CFG, a trajectory a 4-step student
never runs, and at 13x the cost.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


WEIGHT_MODES = ("fp32", "int8", "int4")
CALIBRATED_MODES = ("int8-hybrid", "int8-full")
MODE_LABELS = {
    **{m: f"optimum-cli export openvino --weight-format {m}" for m in WEIGHT_MODES},
    "int8-hybrid": 'OVWeightQuantizationConfig(bits=8, quant_method="hybrid"), calibrated',
    "int8-full": "OVQuantizationConfig on the transformer (--quant-mode int8), calibrated",
}


def cli_export(model: str, weight_format: str, export_dir: Path) -> None:
    """The documented CLI path; a local directory needs the task named."""
    shutil.rmtree(export_dir, ignore_errors=True)
    cli = Path(sys.executable).with_name("optimum-cli")
    cmd = [cli, "export", "openvino", "--model", model, "--task", "text-to-image"]
    cmd += ["--weight-format", weight_format, "--disable-convert-tokenizer", export_dir]
    subprocess.run([str(c) for c in cmd], check=True)


def calibrated_export(a, export_dir: Path, ov_config: dict) -> dict:
    """Export fp32, collect the transformer's inputs over the calibration prompts at the deployed
    sampling, quantize with optimum-intel's OVQuantizer, save to export_dir."""
    import nncf
    from optimum.intel import (
        OVConfig,
        OVQuantizationConfig,
        OVQuantizer,
        OVStableDiffusion3Pipeline,
        OVWeightQuantizationConfig,
    )
    from optimum.intel.openvino.quantization import InferRequestWrapper, OVCalibrationDataset

    prompts = json.loads(Path(a.calibration_prompts).read_text())
    fp32_dir = export_dir.with_name(export_dir.name + ".fp32")
    if not (fp32_dir / "model_index.json").exists():
        cli_export(a.model, "fp32", fp32_dir)
    start = time.perf_counter()
    pipe = OVStableDiffusion3Pipeline.from_pretrained(str(fp32_dir), compile=True, ov_config=ov_config)
    samples: list = []
    pipe.transformer.request = InferRequestWrapper(pipe.transformer.request, samples)
    for prompt in prompts:
        pipe(prompt, num_inference_steps=a.steps, guidance_scale=1.0, height=a.resolution, width=a.resolution,
             max_sequence_length=256, output_type="np")  # fmt: skip
    del pipe
    collect_s = time.perf_counter() - start
    if a.mode == "int8-hybrid":
        qc = OVWeightQuantizationConfig(bits=8, quant_method="hybrid", num_samples=len(samples))
    else:  # --quant-mode int8: full static quantization of the transformer
        qc = OVQuantizationConfig(num_samples=len(samples))
    pipe = OVStableDiffusion3Pipeline.from_pretrained(str(fp32_dir), compile=False)
    OVQuantizer(pipe).quantize(
        calibration_dataset=OVCalibrationDataset({"transformer": nncf.Dataset(samples)}),
        ov_config=OVConfig(quantization_config=qc),
        save_directory=str(export_dir),
    )
    del pipe
    shutil.rmtree(fp32_dir, ignore_errors=True)
    return {"calibration_prompts": len(prompts), "calibration_samples": len(samples), "collect_s": collect_s,
            "quantization_config": type(qc).__name__ + (" (hybrid)" if a.mode == "int8-hybrid" else "")}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--mode", choices=(*WEIGHT_MODES, *CALIBRATED_MODES), required=True)
    ap.add_argument("--calibration-prompts", default=None, help="JSON list of prompts (calibrated modes)")
    ap.add_argument("--resolution", type=int, required=True)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--prompt", default="a photo of a red fox")
    ap.add_argument("--export-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--export-only", action="store_true")
    a = ap.parse_args()

    from optimum.intel import OVStableDiffusion3Pipeline

    ov_config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}  # same arithmetic as fewstep
    export_dir = Path(a.export_dir)
    start = time.perf_counter()
    info_file = export_dir / "fewstep_bench_export.json"
    if not (export_dir / "model_index.json").exists():
        if not a.export_only:  # export in its own process: the timed run's peak RSS is its own
            subprocess.run([sys.executable, __file__, *sys.argv[1:], "--export-only"], check=True)
        else:
            calibration: dict = {}
            if a.mode in CALIBRATED_MODES:
                calibration = calibrated_export(a, export_dir, ov_config)
            else:
                cli_export(a.model, a.mode, export_dir)
            calibration["export_s"] = time.perf_counter() - start
            calibration["export_peak_rss_mb"] = peak_rss_mb()  # the CLI export's child is not counted
            info_file.write_text(json.dumps(calibration))
    calibration = json.loads(info_file.read_text()) if info_file.exists() else {}
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
        **calibration,
        "load_s": load_s,
        "peak_rss_mb": peak_rss_mb(),
        "size_mb": size,
        "versions": {name: version(name) for name in ("optimum-intel", "openvino", "nncf", "diffusers")},
        "mode": MODE_LABELS[a.mode],
    }
    Path(a.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
