"""SD3.5-Medium at its real size (random weights): fewstep bundles vs optimum-intel and diffusers.

    python benchmarks/sd35_medium.py --resolution 256 [--json] [--only diffusers openvino-cpu/fp32 ...]

Every measurement runs in its own subprocess (peak RSS is that process's VmHWM; a 24 GiB
machine cannot hold two real-size models at once) and is cached as JSON under
`--work/<resolution>/results/`, so an interrupted benchmark resumes where it stopped.
Rows:

- `machine`: fp32 and int8 GEMM peaks of this CPU (OpenVINO and torch, transformer-sized
  GEMMs) and the FLOP count of every component (torch's FlopCounterMode on the meta device);
- `t5`: T5-XXL (4.76 B) at 256 tokens, timed at 1 and 3 layers and extrapolated to 24 layers
  (it does not fit in RAM beside the rest): torch fp32 (added to the diffusers rows), OpenVINO
  fp32 and int8 weights (added to the optimum rows in their weight format, and to fewstep's
  "T5 kept" rows: fp32 beside fp32/fp16-weights transformers, int8 weights otherwise);
- `diffusers`: `StableDiffusion3Pipeline` eager fp32 with CFG (guidance 4.5): a few steps
  timed, the 28- and 4-step totals = encoders + steps x median step + VAE decode;
- `optimum/fp32`, `optimum/int8`: optimum-intel's `OVStableDiffusion3Pipeline` export (its
  own virtual environment, created here) at 4 steps, guidance 1 (a distilled student);
- `<target>/<precision>[/no-t5][/vae-int8]`: fewstep bundles at 4 steps, guidance 1, transformer
  in that precision (weight-only rows: the CLIP encoders too; int8: static W8A8 transformer and
  VAE decoder, int8-weights CLIP; VAE fp32 otherwise). The model has no T5: plain rows keep the
  full 77 + 256-token text slot and get T5-XXL's time added ("T5 kept"); `no-t5` rows collapse
  the zero slot to one null token (exact) and run without T5; `vae-int8` adds a calibrated static
  int8 VAE decoder. Built with gates off (`fewstep gate` checks them on a machine with room for
  the torch reference) and deleted after measuring unless --keep.

The last table is the ratio table; with --json the last line holds the issue's four ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from timing import median_seconds

from fewstep.compile.measure import dir_size
from fewstep.fsutil import atomic_write_text
from fewstep.runtime.memory import peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
GUIDANCE = 4.5  # SD3.5-Medium's recommended CFG scale
STEPS = 4
TEACHER_STEPS = 28
INT4_GROUP = 128  # int4 weight group of the int4-weights rows (benchmarks/ov_dynamic_quant.py)
PROMPT = "a photo of a red fox sitting in a snowy forest, golden hour, highly detailed"
VAE_CALIBRATION_PROMPTS = 2  # vae-int8 rows: student trajectories run in torch to calibrate the VAE
# target/precision[/option...]; options: `no-t5` = T5 dropped, its zero slot collapsed to one null
# token (exact: compile/null_tokens.py); `vae-int8` = VAE decoder static int8 (NNCF, calibrated).
# Rows without `no-t5` keep the full 333-token text slot and get T5-XXL's time added.
FEWSTEP_ROWS = [
    "openvino-cpu/fp32",
    "openvino-cpu/fp32/no-t5",
    "openvino-cpu/int8",
    "openvino-cpu/int8/no-t5",
    "openvino-cpu/int8-weights",
    "openvino-cpu/int8-weights/vae-int8",
    "openvino-cpu/int8-weights/no-t5/vae-int8",
    "openvino-cpu/fp16-weights",
    "openvino-cpu/int4-weights",
    "openvino-cpu/int4-weights/no-t5",
    "openvino-cpu/int4-weights/no-t5/vae-int8",
    "onnxruntime-cpu/fp32/no-t5",
    "onnxruntime-cpu/int8/no-t5",
    "onnxruntime-cpu/fp16-weights/no-t5",
    "onnxruntime-cpu/int8-weights/no-t5",
    "onnxruntime-cpu/int4-weights/no-t5",
]
OPTIONS = ("no-t5", "vae-int8")


def parse_row(row: str) -> tuple[str, str, set[str]]:
    target, precision, *opts = row.split("/")
    unknown = set(opts) - set(OPTIONS)
    if unknown:
        raise SystemExit(f"row {row}: unknown option(s) {sorted(unknown)}; allowed: {', '.join(OPTIONS)}")
    return target, precision, set(opts)


OPTIMUM_PINS = [
    "torch==2.13.0",
    "optimum-intel[openvino]==2.2.*",
    "transformers<5.6",
    "huggingface-hub<1.22",
    "diffusers",
    "sentencepiece",
    "protobuf",
]


def dir_mb(path: Path) -> float:
    return dir_size(path) / 2**20


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=1))


# ---------------------------------------------------------------- workers (one process each)


def family(a):
    """The real configuration, or (--tiny, a smoke test of this script) a shrunken one."""
    from fewstep.zoo.sd35_medium import SD35Config

    cfg = SD35Config(resolution=a.resolution)
    if not a.tiny:
        return cfg
    return cfg.scaled(
        transformer={"num_layers": 2, "num_attention_heads": 2, "dual_attention_layers": (0,),
                     "caption_projection_dim": 128, "pooled_projection_dim": 128},
        clip_l={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2,
                "projection_dim": 64},
        clip_g={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2,
                "projection_dim": 64},
        t5={"d_model": 4096, "d_ff": 128, "num_layers": 1, "num_heads": 2, "d_kv": 32, "vocab_size": 1024},
        vae={"block_out_channels": (32, 32, 32, 32)},
    )  # fmt: skip


def w_model(a) -> dict:
    from fewstep.zoo.sd35_medium import save_pipeline

    start = time.perf_counter()
    if not (a.model / "model_index.json").exists():
        save_pipeline(a.model, family(a))
    peer_model(a)
    return {"build_s": time.perf_counter() - start, "size_mb": dir_mb(a.model)}


def peer_model(a) -> Path:
    """The model for optimum-intel, which cannot export an SD3 directory without `text_encoder_3`:
    the same components (linked) plus a 1-layer T5 of T5-XXL's width, whose measured time is
    swapped for the full T5-XXL's in the report."""
    import torch

    from fewstep.zoo import sd35_medium as sd35

    peer = a.work / "model-peer"
    if (peer / "model_index.json").exists():
        return peer
    tmp = a.work / "model-peer.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for item in a.model.iterdir():
        (tmp / item.name).symlink_to(item.resolve())
    (tmp / "model_index.json").unlink()
    index = json.loads((a.model / "model_index.json").read_text())
    index["text_encoder_3"] = ["transformers", "T5EncoderModel"]
    (tmp / "model_index.json").write_text(json.dumps(index, indent=2))
    torch.manual_seed(0)
    sd35.build_t5(family(a).scaled(t5={"num_layers": 1})).save_pretrained(str(tmp / "text_encoder_3"))
    os.replace(tmp, peer)
    return peer


def _gemm_onnx(m: int, k: int, n: int, int8: bool, path: Path) -> Path:
    """One transformer-sized GEMM as ONNX; int8 = Q/DQ on activations and weights (real int8 kernels)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((k, n)).astype(np.float32) * 0.02
    nodes, inits = [], []
    x_in = helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])
    y_out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])
    if int8:
        sw = np.abs(w).max(0) / 127
        wq = np.clip(np.round(w / sw), -127, 127).astype(np.int8)
        inits += [
            numpy_helper.from_array(wq, "wq"),
            numpy_helper.from_array(sw.astype(np.float32), "sw"),
            numpy_helper.from_array(np.array(0.05, np.float32), "sx"),
            numpy_helper.from_array(np.array(128, np.uint8), "zx"),
            numpy_helper.from_array(np.zeros(n, np.int8), "zw"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
            helper.make_node("DequantizeLinear", ["wq", "sw", "zw"], ["wd"], axis=1),
            helper.make_node("MatMul", ["xd", "wd"], ["y"]),
        ]
    else:
        inits.append(numpy_helper.from_array(w, "w"))
        nodes.append(helper.make_node("MatMul", ["x", "w"], ["y"]))
    graph = helper.make_graph(nodes, "gemm", [x_in], [y_out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def w_machine(a) -> dict:
    import numpy as np
    import openvino as ov
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from fewstep.components import Transformer
    from fewstep.zoo import sd35_medium as sd35

    tokens = (a.resolution // 16) ** 2 + sd35.CLIP_LENGTH + sd35.T5_LENGTH
    m, k, n = tokens, 1536, 6144  # the MLP up-projection of one block
    flops = 2 * m * k * n
    out: dict = {"gemm": {"m": m, "k": k, "n": n}}
    core = ov.Core()
    x = np.random.default_rng(1).standard_normal((m, k)).astype(np.float32)
    for label, int8 in (("openvino_fp32", False), ("openvino_int8", True)):
        compiled = core.compile_model(
            core.read_model(str(_gemm_onnx(m, k, n, int8, a.work / "tmp" / f"gemm-{label}.onnx"))),
            "CPU",
            {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"},
        )
        req = compiled.create_infer_request()
        out[f"{label}_gflops"] = flops / median_seconds(lambda r=req: r.infer({"x": x}), 20) / 1e9
    a_t, b_t = torch.from_numpy(x), torch.randn(k, n)
    out["torch_fp32_gflops"] = flops / median_seconds(lambda: a_t @ b_t, 20) / 1e9
    ai = torch.randint(-127, 127, (m, k), dtype=torch.int8)
    bi = torch.randint(-127, 127, (k, n), dtype=torch.int8)
    try:
        out["torch_int8_gops"] = flops / median_seconds(lambda: torch._int_mm(ai, bi), 20) / 1e9
    except RuntimeError as err:
        out["torch_int8_gops"] = None
        out["torch_int8_error"] = str(err)[:200]
    out["fp32_peak_gflops"] = max(out["openvino_fp32_gflops"], out["torch_fp32_gflops"])
    out["int8_peak_gops"] = max(out["openvino_int8_gflops"], out["torch_int8_gops"] or 0)

    cfg = family(a)
    s = a.resolution // 8
    counts = {}
    with torch.device("meta"):
        tr = sd35.build_transformer(cfg)
        # full text slot (77 CLIP + 256 T5 tokens) at batch 1 and 2 (CFG); T5 dropped: 77 + 1 null token
        for key, batch, null in (("batch1", 1, None), ("batch2", 2, None), ("batch1_no_t5", 1, sd35.T5_LENGTH)):
            text_tokens = sd35.CLIP_LENGTH + (1 if null else sd35.T5_LENGTH)
            with FlopCounterMode(display=False) as fc:
                Transformer(tr, null)(
                    torch.empty(batch, 16, s, s),
                    torch.empty(batch),
                    torch.empty(batch, text_tokens, cfg.transformer["joint_attention_dim"]),
                    torch.empty(batch, cfg.transformer["pooled_projection_dim"]),
                )
            counts[f"transformer_{key}"] = fc.get_total_flops()
            # attention scores and their weighted sum (batched matmuls on meta): fp32 in every bundle
            ops = fc.get_flop_counts()["Global"]
            counts[f"transformer_{key}_attention"] = sum(v for op, v in ops.items() if "bmm" in str(op))
        del tr
        from diffusers import AutoencoderKL

        vae = AutoencoderKL(**cfg.vae)
        with FlopCounterMode(display=False) as fc:
            vae.decode(torch.empty(1, 16, s, s))
        counts["vae_decoder"] = fc.get_total_flops()
        del vae
        for name, spec in (("clip_l", cfg.clip_l), ("clip_g", cfg.clip_g)):
            enc = sd35.build_clip(spec, 2, 1)
            with FlopCounterMode(display=False) as fc:
                enc(torch.zeros(1, sd35.CLIP_LENGTH, dtype=torch.long))
            counts[name] = fc.get_total_flops()
        t5 = sd35.build_t5(cfg)
        with FlopCounterMode(display=False) as fc:
            t5(torch.zeros(1, sd35.T5_LENGTH, dtype=torch.long))
        counts["t5"] = fc.get_total_flops()
    out["flops"] = counts
    out["params"] = {
        "transformer": sd35.parameter_count(sd35.build_transformer, cfg),
        "t5": sd35.parameter_count(sd35.build_t5, cfg),
    }
    return out


def _ov_t5_seconds(model, ids, mode: str) -> float:
    """One T5 forward in OpenVINO (converted from torch by OpenVINO's PyTorch frontend)."""
    import nncf
    import openvino as ov
    import torch

    from fewstep.components import T5Encoder
    from fewstep.targets.openvino_cpu import dynamic_quant_group

    with torch.no_grad():
        ir = ov.convert_model(T5Encoder(model), example_input=(ids,))
    config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    if mode != "fp32":  # int8 weights, as fewstep's quantizer writes them (optimum: asymmetric)
        sym = mode == "int8-weights"
        ir = nncf.compress_weights(
            ir, mode=nncf.CompressWeightsMode.INT8_SYM if sym else nncf.CompressWeightsMode.INT8_ASYM
        )
        if sym:  # fewstep's group; optimum's runs at the plugin default
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = dynamic_quant_group(ir)
    request = ov.Core().compile_model(ir, "CPU", config).create_infer_request()
    feed = ids.numpy()
    return median_seconds(lambda: request.infer({0: feed}), 3)


T5_MODES = {"torch": None, "openvino_fp32": "fp32", "openvino_int8w": "int8-weights", "optimum_int8w": "int8-asym"}


def w_t5(a) -> dict:
    """T5-XXL per forward, extrapolated from 1- and 3-layer models: torch fp32 (the teacher),
    OpenVINO fp32 and int8 weights (fewstep's group; optimum's asymmetric default)."""
    import torch

    from fewstep.zoo import sd35_medium as sd35

    cfg = family(a)
    ids = torch.randint(0, cfg.t5["vocab_size"], (1, sd35.T5_LENGTH))
    per: dict = {name: {} for name in T5_MODES}
    for layers in (1, 3):
        torch.manual_seed(0)
        model = sd35.build_t5(cfg.scaled(t5={"num_layers": layers})).eval()
        with torch.no_grad():
            per["torch"][layers] = median_seconds(lambda m=model: m(ids), 3)
        for name, mode in T5_MODES.items():
            if mode is not None:
                per[name][layers] = _ov_t5_seconds(model, ids, mode)
        del model
    full_layers = cfg.t5["num_layers"]
    params = sd35.parameter_count(sd35.build_t5, cfg)
    out: dict = {"weights_mb_fp32": params * 4 / 2**20}
    for name, times in per.items():
        slope = (times[3] - times[1]) / 2
        prefix = "" if name == "torch" else f"{name}_"
        out[f"{prefix}seconds_1_layer_model"] = times[1]
        out[f"{prefix}seconds_3_layer_model"] = times[3]
        out[f"{prefix}seconds_per_layer"] = slope
        out[f"{prefix}seconds"] = times[1] + (full_layers - 1) * slope
    out["note"] = "T5-XXL at 256 tokens, extrapolated from 1- and 3-layer models (torch fp32; OpenVINO)"
    return out


def _timed(module, name: str, log: dict, method: str = "forward") -> None:
    original = getattr(module, method)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        result = original(*args, **kwargs)
        log.setdefault(name, []).append(time.perf_counter() - start)
        return result

    setattr(module, method, wrapper)


def w_diffusers(a) -> dict:
    import torch

    from fewstep.sd3_pipeline import load_pipeline

    torch.set_num_threads(os.cpu_count() or 1)
    pipe = load_pipeline(a.model)
    log: dict = {}
    for name, module, method in (
        ("text_encoder", pipe.text_encoder, "forward"),
        ("text_encoder_2", pipe.text_encoder_2, "forward"),
        ("transformer", pipe.transformer, "forward"),
        ("vae_decoder", pipe.vae, "decode"),
    ):
        _timed(module, name, log, method)
    timed_steps = a.teacher_steps
    with torch.no_grad():
        pipe(
            PROMPT,
            num_inference_steps=timed_steps,
            guidance_scale=GUIDANCE,
            height=a.resolution,
            width=a.resolution,
            max_sequence_length=256,
            output_type="np",
        )
    steps = log["transformer"][1:] or log["transformer"]  # the first step warms up
    step = statistics.median(steps)
    enc = sum(sum(log[n]) for n in ("text_encoder", "text_encoder_2"))
    vae = sum(log["vae_decoder"])
    return {
        "step_s": step,
        "steps_timed": log["transformer"],
        "encoders_s": enc,
        "vae_s": vae,
        "e2e_28_s": enc + TEACHER_STEPS * step + vae,
        "e2e_4_s": enc + STEPS * step + vae,
        "peak_rss_mb": peak_rss_mb(),
        "cfg_batch": 2,
        "note": f"{timed_steps} steps timed (CFG batch 2); totals = encoders + steps x median step + VAE",
    }


def _fewstep_cfg(target: str, precision: str, opts: set[str]):
    from fewstep.compile.config import CompileConfig

    quant = None
    own: dict = {}
    if precision == "int8":  # static W8A8 transformer and VAE; CLIP int8 weights as in the weight-only rows
        # weights-first: NNCF's `full` PTQ of the 2.24 B fp32 transformer does not fit in 24 GiB
        quant = {"scheme": "int8", "mode": "weights-first", "components": ["transformer"]}
        quant["calibration_prompts"] = VAE_CALIBRATION_PROMPTS
        own = {name: {"scheme": "int8-weights"} for name in ("text_encoder", "text_encoder_2")}
        own["vae_decoder"] = {"scheme": "int8", "calibration_prompts": VAE_CALIBRATION_PROMPTS}
    elif precision in ("int8-weights", "int4-weights"):
        # as optimum-intel's weight modes: the CLIP encoders' weights too (the VAE stays fp32)
        quant = {"scheme": precision, "components": ["text_encoder", "text_encoder_2", "transformer"]}
        if precision == "int4-weights":
            quant["group_size"] = INT4_GROUP
    kwargs = dict(
        target=target,
        precision=precision,
        steps=STEPS,
        guidance=1.0,
        gates={"enabled": False},
        measure=False,
        # the model has no T5: `no-t5` rows collapse its zero slot, the others keep all 256 tokens
        restructure={"collapse_null_tokens": "no-t5" in opts},
    )
    if quant:
        kwargs["quantization"] = quant
    if "vae-int8" in opts:
        own["vae_decoder"] = {"scheme": "int8", "calibration_prompts": VAE_CALIBRATION_PROMPTS}
    if own:
        kwargs["component_quantization"] = own
    return CompileConfig(**kwargs)


def w_build(a) -> dict:
    from fewstep.compile.api import compile_bundle

    target, precision, opts = parse_row(a.row)
    out = a.work / "bundles" / a.row.replace("/", "-")
    tmp = a.work / "tmp" / a.row.replace("/", "-")
    start = time.perf_counter()
    compile_bundle(a.model, _fewstep_cfg(target, precision, opts), out, work_dir=tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    return {"build_s": time.perf_counter() - start, "build_peak_rss_mb": peak_rss_mb(), "bundle": str(out)}


def w_run(a) -> dict:
    from fewstep.runtime.bundle import Bundle

    path = a.work / "bundles" / a.row.replace("/", "-")
    start = time.perf_counter()
    bundle = Bundle.open(path)
    load_s = time.perf_counter() - start
    log: dict = {}
    original = bundle.run_component

    def run_component(name, feeds):
        t0 = time.perf_counter()
        result = original(name, feeds)
        log.setdefault(name, []).append(time.perf_counter() - t0)
        return result

    bundle.run_component = run_component  # type: ignore[method-assign]
    bundle.generate([PROMPT], seed=0)  # warm-up
    e2e = []
    for i in range(a.repeats):
        log.clear()
        start = time.perf_counter()
        bundle.generate([PROMPT], seed=i + 1)
        e2e.append(time.perf_counter() - start)
    return {
        "e2e_s": statistics.median(e2e),
        "e2e_all_s": e2e,
        "step_s": statistics.median(log["transformer"]),
        "components_s": {k: sum(v) for k, v in log.items()},
        "load_s": load_s,
        "peak_rss_mb": peak_rss_mb(),
        "size_mb": dir_mb(path),
        "precision": json.loads((path / "manifest.json").read_text())["precision"],
    }


WORKERS = {"model": w_model, "machine": w_machine, "t5": w_t5, "diffusers": w_diffusers, "build": w_build, "run": w_run}


# ---------------------------------------------------------------- optimum-intel peer


def optimum_python(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if not (venv / ".ready").exists():
        print(f"creating optimum-intel environment in {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *OPTIMUM_PINS], check=True)
        # PyPI's torchvision breaks against the CPU torch wheel (FACTS.md); optimum runs without it.
        subprocess.run([str(py), "-m", "pip", "uninstall", "-q", "-y", "torchvision"], check=False)
        (venv / ".ready").write_text("ok")
    return py


# ---------------------------------------------------------------- driver


def rows_of(only: list[str] | None) -> list[str]:
    rows = ["model", "machine", "t5", "diffusers", "optimum/fp32", "optimum/int8"]
    rows += FEWSTEP_ROWS
    if not only:
        return rows
    unknown = sorted(set(only) - set(rows))
    if unknown:
        raise SystemExit(f"--only: unknown row(s) {unknown}; allowed: {', '.join(rows)}")
    return ["model", *[r for r in rows if r in only and r != "model"]]


def _sub(a, worker: str, row: str | None = None, timeout: float | None = None) -> dict | None:
    result = a.work / "results" / f".{worker}-{(row or worker).replace('/', '-')}.json"
    cmd = [sys.executable, __file__, "--worker", worker, "--resolution", str(a.resolution), "--work", str(a.root)]
    cmd += ["--result", str(result), "--repeats", str(a.repeats), "--teacher-steps", str(a.teacher_steps)]
    cmd += ["--tiny"] if a.tiny else []
    if row:
        cmd += ["--row", row]
    proc = subprocess.run(cmd, timeout=timeout)
    if proc.returncode or not result.exists():
        print(f"  {worker} {row or ''}: failed (exit {proc.returncode})", flush=True)
        return None
    data = json.loads(result.read_text())
    result.unlink()
    return data


def measure(a, row: str) -> dict | None:
    cache = a.work / "results" / f"{row.replace('/', '-')}.json"
    rebuild = row == "model" and not (a.model / "model_index.json").exists()  # deleted to free the disk
    if cache.exists() and not rebuild:
        return json.loads(cache.read_text())
    print(f"== {row}", flush=True)
    start = time.perf_counter()
    if row in ("model", "machine", "t5", "diffusers"):
        if a.build_only and row != "model":
            return None
        data = _sub(a, row)
    elif row.startswith("optimum/"):
        if a.build_only and (a.work / "optimum" / row.split("/")[1] / "model_index.json").exists():
            return None
        py = optimum_python(a.root / "optimum-venv")
        peer_model(a)
        out = a.work / "results" / ".optimum.json"
        cmd = [str(py), str(ROOT / "benchmarks" / "sd35_optimum_peer.py"), "--model", str(a.work / "model-peer")]
        cmd += ["--mode", row.split("/")[1], "--resolution", str(a.resolution), "--steps", str(STEPS)]
        cmd += ["--export-dir", str(a.work / "optimum" / row.split("/")[1]), "--out", str(out)]
        cmd += ["--repeats", str(a.repeats), "--prompt", PROMPT] + (["--export-only"] if a.build_only else [])
        proc = subprocess.run(cmd)
        data = json.loads(out.read_text()) if proc.returncode == 0 and out.exists() else None
        if a.build_only:
            return None
        if data is not None and not a.keep:
            shutil.rmtree(a.work / "optimum" / row.split("/")[1], ignore_errors=True)
    else:
        record = a.work / "bundles" / f"{row.replace('/', '-')}.build.json"
        built = json.loads(record.read_text()) if record.exists() else _sub(a, "build", row)
        if built is not None:
            write_json(record, built)
        else:  # a failed build leaves its exports (GBs): free the disk for the next row
            shutil.rmtree(a.work / "tmp" / row.replace("/", "-"), ignore_errors=True)
        if a.build_only:
            return None
        data = None
        if built is not None:
            data = _sub(a, "run", row)
            if data is not None:
                data.update(built)
        if not a.keep:
            shutil.rmtree(a.work / "bundles" / row.replace("/", "-"), ignore_errors=True)
            record.unlink(missing_ok=True)
    if data is None:
        return None
    data["wall_s"] = time.perf_counter() - start
    write_json(cache, data)
    return data


def report(a, res: dict) -> dict:
    machine, t5, teacher = res.get("machine"), res.get("t5"), res.get("diffusers")
    t5_s = t5["seconds"] if t5 else float("nan")
    fl = machine["flops"] if machine else {}
    print(f"\n# SD3.5-Medium architecture, {a.resolution} px, random weights, this machine ({os.cpu_count()} cores)")
    if machine:
        print(
            f"GEMM peaks ({machine['gemm']['m']}x{machine['gemm']['k']}x{machine['gemm']['n']}): "
            f"fp32 {machine['fp32_peak_gflops']:.0f} GFLOP/s (OpenVINO {machine['openvino_fp32_gflops']:.0f}, "
            f"torch {machine['torch_fp32_gflops']:.0f}); int8 {machine['int8_peak_gops']:.0f} GOP/s "
            f"(OpenVINO {machine['openvino_int8_gflops']:.0f}, torch {machine['torch_int8_gops'] or 0:.0f})"
        )
        print(
            "FLOPs: transformer step {:.2f} T (batch 1), VAE decode {:.2f} T, CLIP-L {:.3f} T, CLIP-G {:.3f} T, "
            "T5-XXL {:.2f} T".format(
                fl["transformer_batch1"] / 1e12,
                fl["vae_decoder"] / 1e12,
                fl["clip_l"] / 1e12,
                fl["clip_g"] / 1e12,
                fl["t5"] / 1e12,
            )
        )
    if t5:
        print(
            f"T5-XXL (256 tokens): torch fp32 {t5_s:.2f} s; OpenVINO fp32 {_t5_seconds(t5, 'openvino_fp32'):.2f} s, "
            f"int8 weights {_t5_seconds(t5, 'openvino_int8w'):.2f} s (optimum's asymmetric, default group: "
            f"{_t5_seconds(t5, 'optimum_int8w'):.2f} s) ({t5['note']})"
        )
    rows = []
    if teacher:
        step = teacher["step_s"]
        rows.append(("diffusers fp32, 28 steps, CFG", teacher["e2e_28_s"] + t5_s, step, "batch2", teacher, "fp32"))
        rows.append(("diffusers fp32, 4 steps, CFG", teacher["e2e_4_s"] + t5_s, step, "batch2", teacher, "fp32"))
    for mode in ("fp32", "int8"):
        d = res.get(f"optimum/{mode}")
        if d:  # its 1-layer T5 stand-in swapped for T5-XXL in OpenVINO in the same weight format
            t5_peer = _t5_seconds(t5, "openvino_fp32" if mode == "fp32" else "optimum_int8w")
            e2e = d["e2e_s"] - d["components_s"].get("text_encoder_3", 0.0) + t5_peer
            rows.append(
                (f"optimum-intel {mode}, 4 steps", e2e, d["step_s"], "batch1", d, "int8" if mode == "int8" else "fp32")
            )
    for row in FEWSTEP_ROWS:
        d = res.get(row)
        if not d:
            continue
        t, p, opts = parse_row(row)
        # Weight-compressed MatMuls run int8 GEMMs on activations quantized on the fly: OpenVINO's
        # CPU plugin by default, ONNX Runtime's MatMulNBits at accuracy level 4 (fewstep's setting).
        # Static int8 quantizes attention's inputs too: OpenVINO runs it as an int8 MHA subgraph.
        int8_gemm = p in ("int8", "int8-weights", "int4-weights")
        arith = "w8a8" if p == "int8" else "int8" if int8_gemm else "fp32"
        vae = " + int8 VAE" if "vae-int8" in opts or p == "int8" else ""
        label = f"fewstep {t} {'static int8 (W8A8)' if p == 'int8' else p}{vae}, 4 steps"
        if "no-t5" in opts:
            rows.append((f"{label}, T5 dropped (1 null token)", d["e2e_s"], d["step_s"], "batch1_no_t5", d, arith))
            continue
        # T5 kept: OpenVINO T5-XXL, int8 weights beside a quantized transformer (torch fp32 for ORT)
        t5_row = (
            "torch" if t != "openvino-cpu" else ("openvino_fp32" if p in ("fp32", "fp16-weights") else "openvino_int8w")
        )
        rows.append((label, d["e2e_s"] + _t5_seconds(t5, t5_row), d["step_s"], "batch1", d, arith))
    print("\n| path | end to end s (T5 incl.) | transformer step s | step / compute floor | peak RSS MB | size MB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, e2e, step, flops, d, arith in rows:
        floor = _floor(machine, flops, arith)
        ratio = f"{step / floor:.2f}x" if floor else ""
        size = f"{d['size_mb']:.0f}" if d.get("size_mb") else ""
        print(f"| {label} | {e2e:.1f} | {step:.2f} | {ratio} | {d['peak_rss_mb']:.0f} | {size} |")
    ov = [
        (e2e, lbl, d, arith, flops) for lbl, e2e, _, flops, d, arith in rows if lbl.startswith("fewstep openvino-cpu")
    ]
    best = min(ov, key=lambda r: r[0]) if ov else None
    ratios: dict = {}
    print("\n## ratios (fewstep's best 4-step OpenVINO bundle)")
    peer_rows = {r[0]: r[1] for r in rows if r[0].startswith("optimum-intel")}
    # same steps and weight format: fp32 vs optimum fp32; int8 weights vs optimum's int8 weight mode
    same: dict[str, tuple[float, str]] = {}
    # fewstep's int8 rows, W8A8 or weight-only, pair with optimum's int8 weight mode
    for ours, theirs in ((("fp32",), "fp32"), (("int8-weights", "static int8"), "int8")):
        peer = peer_rows.get(f"optimum-intel {theirs}, 4 steps")
        for dropped in (False, True):
            mine = [
                r
                for r in ov
                if r[1].startswith(tuple(f"fewstep openvino-cpu {p}" for p in ours))
                and ("T5 dropped" in r[1]) == dropped
            ]
            if peer and mine:
                fastest = min(mine, key=lambda r: r[0])
                same[f"{theirs}{' T5 dropped' if dropped else ''}"] = (peer / fastest[0], fastest[1])
                print(
                    f"vs optimum-intel {theirs} (T5 kept), same steps and precision, {fastest[1]}: "
                    f"{peer / fastest[0]:.2f}x"
                )
    kept = {k: v for k, v in same.items() if "dropped" not in k}
    if kept:  # both pipelines keep T5; the best same-precision pair
        key = max(kept, key=lambda k: kept[k][0])
        ratios["speedup_vs_optimum_intel"] = kept[key][0]
        ratios["speedup_vs_optimum_intel_pair"] = f"{kept[key][1]} vs optimum-intel {key}"
    dropped_pairs = {k: v for k, v in same.items() if "dropped" in k}
    if dropped_pairs:
        key = max(dropped_pairs, key=lambda k: dropped_pairs[k][0])
        ratios["speedup_vs_optimum_intel_t5_dropped"] = dropped_pairs[key][0]
    if best and teacher:
        ratios["speedup_vs_diffusers_teacher"] = (teacher["e2e_28_s"] + t5_s) / best[0]
        print(f"vs diffusers teacher at 28 steps with CFG: {ratios['speedup_vs_diffusers_teacher']:.1f}x ({best[1]})")
    if best and machine:
        floor = _floor(machine, best[4], best[3])
        ratios["floor_ratio"] = best[2]["step_s"] / floor
        print(f"transformer step / compute floor of its arithmetic: {ratios['floor_ratio']:.2f}x")
    if best and teacher:
        teacher_rss = teacher["peak_rss_mb"] + (t5["weights_mb_fp32"] if t5 else 0)
        ratios["rss_ratio"] = best[2]["peak_rss_mb"] / teacher_rss
        print(f"peak RSS vs teacher pipeline (+ T5-XXL fp32 weights): {ratios['rss_ratio']:.2f}x")
    return ratios


def _t5_seconds(t5: dict | None, mode: str) -> float:
    """T5-XXL seconds per prompt in one of T5_MODES (torch fp32 if that mode was not measured)."""
    if not t5:
        return float("nan")
    key = "seconds" if mode == "torch" else f"{mode}_seconds"
    return t5.get(key, t5["seconds"])


def _floor(machine: dict | None, flops: str, arith: str) -> float | None:
    """Seconds per transformer step at this machine's measured GEMM peaks: the projections and
    MLPs at the peak of the bundle's arithmetic; attention at the fp32 peak, except in static int8
    bundles (`w8a8`), whose attention inputs are quantized too and which run it in int8."""
    if not machine or f"transformer_{flops}" not in machine["flops"]:
        return None
    fp32 = machine["fp32_peak_gflops"] * 1e9
    peak = machine["int8_peak_gops"] * 1e9 if arith in ("int8", "w8a8") else fp32
    total = machine["flops"][f"transformer_{flops}"]
    attention = machine["flops"].get(f"transformer_{flops}_attention", 0)
    return (total - attention) / peak + attention / (peak if arith == "w8a8" else fp32)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, choices=(256, 512), default=256)
    ap.add_argument("--json", action="store_true", help="print the ratios as a JSON last line")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "sd35-medium-bench")
    ap.add_argument("--only", nargs="+", default=None, help="rows to measure (the model is always built)")
    ap.add_argument("--repeats", type=int, default=1, help="timed generations per bundle (after one warm-up)")
    ap.add_argument("--teacher-steps", type=int, default=3, help="diffusers steps timed (the first warms up)")
    ap.add_argument("--keep", action="store_true", help="keep bundles and optimum exports (GBs each)")
    ap.add_argument("--report-only", action="store_true", help="print the tables from cached results")
    ap.add_argument(
        "--build-only", action="store_true", help="only build the model, bundles and optimum exports (kept for later)"
    )
    ap.add_argument("--tiny", action="store_true", help="a shrunken model: smoke-test this script in minutes")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--row", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.root = a.work.resolve()
    a.work = a.root / (f"tiny-{a.resolution}" if a.tiny else str(a.resolution))
    a.model = a.work / "model"
    if a.worker:
        write_json(a.result, WORKERS[a.worker](a))
        return
    if not a.report_only:
        for row in rows_of(a.only):
            measure(a, row)  # caches its result under results/
    res = {}
    for row in rows_of(None):
        cache = a.work / "results" / f"{row.replace('/', '-')}.json"
        res[row] = json.loads(cache.read_text()) if cache.exists() else None
    ratios = report(a, res)
    if a.json:
        print(json.dumps(ratios))


if __name__ == "__main__":
    main()
