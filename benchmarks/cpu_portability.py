"""What `cpu: portable` costs against `cpu: native`, and what each computes on a CPU without VNNI.

    python benchmarks/cpu_portability.py toy [--images 1000] [--seeds 3]
    python benchmarks/cpu_portability.py real [--layers 24] [--emulate]

`toy`: the shipped 4-step student (zoo:shapes-flash) compiled to OpenVINO int8 (the demo's
scheme: full PTQ for the CLIP encoders, hybrid transformer) with `cpu: portable` and with
`cpu: native`, per calibration seed; each bundle gated natively with `--images` distribution images and as an avx2
CPU (qemu-user, else skipped) with `--low-images`; transformer step time on this CPU (median).

`real`: the SD3.5-Medium transformer at real width (`--layers` of its 24 blocks, random weights,
256 px, T5 dropped: 77 CLIP tokens + the null token) as fp32, int8-weights and static W8A8
(`mode: weights-first`) portable / native, each quantized in a fresh process; step time and cosine
against fp32 on this CPU and under ONEDNN_MAX_CPU_ISA=AVX2 / AVX512_CORE (oneDNN's cap: real
hardware running those code paths; a proxy for such CPUs, stated as such); with `--emulate`, the
cosines under qemu-user's Haswell too (the exact ISA; too slow to time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

from timing import median_seconds  # noqa: E402


# -- toy -------------------------------------------------------------------------------------
def toy(args) -> None:
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig
    from fewstep.cpu.restriction import IsaUnavailable, restriction_for
    from fewstep.gates.config import GateConfig
    from fewstep.gates.isa import gate_isa
    from fewstep.runtime.bundle import Bundle
    from fewstep.sampling import sampling_for
    from fewstep.sd3_pipeline import load_pipeline, resolve_model
    from fewstep.targets.registry import get_target

    low = None
    try:
        restriction_for(get_target("openvino-cpu"), "avx2")
        low = "avx2"
    except IsaUnavailable as e:
        print(f"(avx2 not gated: {e})")
    model_dir = resolve_model("zoo:shapes-flash")
    pipe = load_pipeline(model_dir)
    sampling = sampling_for(pipe, model_dir)
    rows = []
    for seed in range(args.seeds):
        for cpu in ("portable", "native"):
            gates = {"distribution": {"num_images": args.images}, "tensor": {"max_abs_max": None}}
            cfg = CompileConfig(
                target="openvino-cpu",
                quantization={"scheme": "int8", "calibration_prompts": 32, "calibration_seed": 1234 + seed},
                cpu=cpu,
                gates=gates,
                measure=False,
                require_gates=False,
            )
            out = args.work / f"toy-{cpu}-{seed}"
            if out.exists():
                import shutil

                shutil.rmtree(out)
            _, native = compile_bundle("zoo:shapes-flash", cfg, out)
            bundle = Bundle.open(out, allow_isa_mismatch=True)
            feeds = {"hidden_states": np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float32)}
            io = bundle.manifest["components"]["transformer"]["io"]
            for t in io["inputs"]:
                if t["name"] != "hidden_states":
                    shape = [d if isinstance(d, int) else 1 for d in t["shape"]]
                    feeds[t["name"]] = (
                        np.full(shape, 750.0, np.float32)
                        if t["name"] == "timestep"
                        else (np.random.default_rng(1).standard_normal(shape).astype(np.float32))
                    )
            step = median_seconds(lambda b=bundle, f=feeds: b.run_component("transformer", f), repeats=200)
            reports = {"native": (native, args.images)}
            if low:  # the emulated CPU: fewer distribution images (qemu runs the bundle about 50x slower)
                low_cfg = GateConfig(**{**cfg.gates.model_dump(), "distribution": {"num_images": args.low_images}})
                reports[low] = (gate_isa(out, low, pipe, model_dir, sampling, low_cfg), args.low_images)
            for name, (report, images) in reports.items():
                r = {x.gate: x.value for x in report.results}
                cos = [v for k, v in r.items() if k.endswith("/cosine")]
                rows.append(
                    {
                        "seed": seed, "cpu": cpu, "isa": name, "images": images, "passed": report.passed,
                        "min_cosine": min(cos), "psnr": r["image/psnr"], "ssim": r["image/ssim"],
                        "fid_ratio": r["distribution/fid_ratio"], "alignment_drop": r["distribution/alignment_drop"],
                        "step_ms": step * 1e3,
                    }
                )  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    head = ("cpu", "gated as", "images", "seeds passed", "min cosine", "PSNR dB", "SSIM", "FID ratio", "alignment drop")
    print("\n| " + " | ".join((*head, "step ms")) + " |")
    print("|" + " --- |" * (len(head) + 1))
    for cpu in ("portable", "native"):
        for isa in dict.fromkeys(r["isa"] for r in rows):
            sel = [r for r in rows if r["cpu"] == cpu and r["isa"] == isa]
            if not sel:
                continue

            def ms(key, sel=sel):
                v = np.array([r[key] for r in sel])
                return f"{v.mean():.4g} ± {v.std():.2g}"

            cells = [cpu, isa, str(sel[0]["images"]), f"{sum(r['passed'] for r in sel)}/{len(sel)}"]
            cells += [ms(k) for k in ("min_cosine", "psnr", "ssim", "fid_ratio", "alignment_drop", "step_ms")]
            print("| " + " | ".join(cells) + " |")


# -- real width ------------------------------------------------------------------------------
VARIANTS = {  # name -> (scheme config kwargs, handler kind)
    "int8-weights": {"scheme": "int8-weights"},
    "w8a8-portable": {"scheme": "int8", "mode": "weights-first", "reduce_range": True},
    "w8a8-native": {"scheme": "int8", "mode": "weights-first", "reduce_range": False},
}


def quantize_worker(name: str, xml: Path, out: Path) -> dict:
    import ov_ptq_memory as base

    from fewstep.quantize import Int8Config, WeightOnlyConfig, load_handlers, quantize_model
    from fewstep.targets.base import ComponentIO

    spec = dict(VARIANTS[name])
    cfg = WeightOnlyConfig(**spec) if spec["scheme"] == "int8-weights" else Int8Config(**spec)
    load_handlers("openvino")
    start = time.perf_counter()
    items = [base._feeds(i + 1) for i in range(base.CALIBRATION)]
    result = quantize_model("openvino", xml, ComponentIO("transformer", (), ("sample",)), cfg, items, out)
    return {"xml": str(result), "seconds": time.perf_counter() - start}


def run_worker(xml: Path, repeats: int) -> dict:
    """Step time and output in this process (whatever ISA restriction it was started under)."""
    import openvino as ov
    import ov_ptq_memory as base

    from fewstep.targets.openvino_cpu import dynamic_quant_group

    core = ov.Core()
    model = core.read_model(str(xml))
    config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    if (group := dynamic_quant_group(model)) is not None:
        config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = str(group)
    try:
        request = core.compile_model(model, "CPU", config).create_infer_request()
    except RuntimeError as e:
        return {"error": str(e).strip().splitlines()[-1][:160]}
    feeds = base._feeds(9)
    try:
        out = np.array(request.infer(feeds)[0])
    except RuntimeError as e:  # oneDNN's AVX2 cap: compressed-weight MatMuls fail at the first run
        return {"error": next((x for x in str(e).splitlines() if "could not" in x), str(e))[:160]}
    seconds = median_seconds(lambda: request.infer(feeds), repeats=repeats, warmup=0) if repeats else None
    np.save(str(xml) + ".out.npy", out)
    return {"step_s": seconds}


def real(args) -> None:
    import ov_ptq_memory as base

    from fewstep.cpu.restriction import qemu_binary

    xml = base.build_ir(args.layers, args.work)
    files = {"fp32": xml}
    for name in VARIANTS:
        out = args.work / f"{args.layers}-{name}"
        out.mkdir(exist_ok=True)
        res = _sub(["--quantize", name, "--xml", str(xml), "--out", str(out)], {})
        files[name] = Path(res["xml"])
        print(f"{name}: quantized in {res['seconds']:.0f} s", flush=True)
    settings = {"this CPU": ({}, [], args.repeats)}
    settings["ONEDNN_MAX_CPU_ISA=AVX512_CORE"] = ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, [], args.repeats)
    settings["ONEDNN_MAX_CPU_ISA=AVX2"] = ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, [], args.repeats)
    if args.emulate and (qemu := qemu_binary()):
        settings["qemu Haswell (avx2)"] = ({}, [qemu, "-cpu", "Haswell"], 0)
    ref = None
    table = []
    for where, (env, prefix, repeats) in settings.items():
        for name, path in files.items():
            res = _sub(["--run", str(path), "--repeats", str(repeats)], env, prefix)
            if "error" in res:
                table.append((where, name, None, None, res["error"]))
                continue
            out = np.load(str(path) + ".out.npy")
            if ref is None:
                ref = out  # fp32 on this CPU
            cos = float((out * ref).sum() / np.linalg.norm(out) / np.linalg.norm(ref))
            table.append((where, name, res["step_s"], cos, ""))
            print(table[-1], flush=True)
    print(f"\nSD3.5-Medium transformer, {args.layers} real-width blocks, 256 px, T5 dropped")
    print("| runtime ISA | precision | step ms | vs fp32 there | cosine vs fp32 (this CPU) | note |")
    print("| --- | --- | --- | --- | --- | --- |")
    for where, name, step, cos, note in table:
        fp32 = next((s for w, n, s, _, _ in table if w == where and n == "fp32"), None)
        ratio = f"{fp32 / step:.2f}x" if step and fp32 else ""
        step_ms = f"{step * 1e3:.0f}" if step else ""
        cos_s = f"{cos:.5f}" if cos is not None else ""
        print(f"| {where} | {name} | {step_ms} | {ratio} | {cos_s} | {note} |")


def _sub(extra: list[str], env: dict, prefix: list[str] | None = None) -> dict:
    cmd = [*(prefix or []), sys.executable, __file__, "worker", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["toy", "real", "worker"])
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "cpu-portability")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--low-images", type=int, default=200, help="distribution images when gated as avx2")
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--emulate", action="store_true")
    ap.add_argument("--quantize", help=argparse.SUPPRESS)
    ap.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--xml", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.what == "worker":
        result = (
            quantize_worker(args.quantize, args.xml, args.out) if args.quantize else run_worker(args.run, args.repeats)
        )
        print(json.dumps(result))
    else:
        (toy if args.what == "toy" else real)(args)


if __name__ == "__main__":
    main()
