"""The measurements of `sd35_medium.py`, each run in its own subprocess (`--worker NAME`): the
model, this CPU's GEMM peaks and FLOP counts, T5-XXL, the diffusers teacher, fewstep builds and
bundle runs. Rows and settings shared by the driver and the report are defined here."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from pathlib import Path

from fewstep.compile.measure import dir_size
from fewstep.fsutil import atomic_write_text
from fewstep.runtime.manifest import MODULATION
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
    "openvino-cpu/int8/bf16",
    "openvino-cpu/int8/no-t5/bf16",
    "openvino-cpu/int8/vae-fp32",
    "openvino-cpu/int8/vae-fp32/bf16",
    "openvino-cpu/int8/no-t5/vae-fp32",
    "openvino-cpu/int8/no-t5/vae-fp32/bf16",
    "openvino-cpu/int8/no-t5/vae-fp32/bf16/text-128",
    "openvino-cpu/int8/bf16/hoist",
    "openvino-cpu/int8/no-t5/bf16/hoist",
    "openvino-cpu/int8/no-t5/vae-fp32/bf16/hoist",
    "openvino-cpu/int8/bf16/hoist/attn-int8",
    "openvino-cpu/int8/no-t5/bf16/hoist/attn-int8",
    "openvino-cpu/int8/bf16/hoist/tokens",
    "openvino-cpu/int8/bf16/hoist/attn-int8/tokens",
    "openvino-cpu/int8/bf16/hoist/attn-int8/keys",
    "openvino-cpu/int8-weights",
    "openvino-cpu/int8-weights/vae-int8",
    "openvino-cpu/int8-weights/no-t5/vae-int8",
    "openvino-cpu/fp16-weights",
    "openvino-cpu/int4-weights",
    "openvino-cpu/int4-weights/no-t5",
    "openvino-cpu/int4-weights/bf16",
    "openvino-cpu/int4-weights/no-t5/bf16",
    "openvino-cpu/int4-weights/no-t5/vae-int8",
    "onnxruntime-cpu/fp32/no-t5",
    "onnxruntime-cpu/int8/no-t5",
    "onnxruntime-cpu/fp16-weights/no-t5",
    "onnxruntime-cpu/int8-weights/no-t5",
    "onnxruntime-cpu/int4-weights/no-t5",
]


# bf16: the bundle's float arithmetic in bf16 (`inference_precision`), attention left float (`attention: float`);
# vae-fp32: int8 rows with the fp32 VAE decoder (its static int8 calibration at full size needs 30.7 GB at
# 1024 px; since the eighth session of issue 20 the int8 rows calibrate it on 64x64 latent crops instead);
# text-128: with no-t5, the zero slot collapsed to 51 null tokens (`restructure.null_slots`), 128 text
# tokens in all (1024 px: 4224 joint tokens, not 4174; a count the attention kernel's blocks divide);
# attn-int8: with bf16, attention kept int8 (the int8 MHA subgraph; on AVX512-BF16 CPUs without AMX its
# 1024 px step is 1.11x faster than with bf16 float attention: ov_step_ab.py, docs/benchmarks.md)
# tokens / keys: the transformer's attentions exported with q, k, v (keys: k and v) token-major up to the
# attention (compile's attention_layout; fewstep/joint_attention.py); the other rows: diffusers' head-major graph
LAYOUT_OPTIONS = ("tokens", "keys")
OPTIONS = ("no-t5", "vae-int8", "vae-fp32", "bf16", "text-128", "hoist", "attn-int8", *LAYOUT_OPTIONS)
ALIGNED_TEXT = 128


# optimum-intel's modes (benchmarks/sd35_optimum_peer.py) and their table labels
OPTIMUM_MODES = ("fp32", "int8", "int8-hybrid", "int8-full", "int4")
OPTIMUM_LABELS = {
    "fp32": "fp32",
    "int8": "int8 weights",
    "int8-hybrid": "hybrid int8 (int8 weights + static int8 activations)",
    "int8-full": "static int8 (W8A8, --quant-mode int8)",
    "int4": "int4 weights",
}


def parse_row(row: str) -> tuple[str, str, set[str]]:
    target, precision, *opts = row.split("/")
    unknown = set(opts) - set(OPTIONS)
    if unknown:
        raise SystemExit(f"row {row}: unknown option(s) {sorted(unknown)}; allowed: {', '.join(OPTIONS)}")
    if "text-128" in opts and "no-t5" not in opts:
        raise SystemExit(f"row {row}: text-128 collapses the zero T5 slot, so it needs no-t5")
    if len(set(LAYOUT_OPTIONS) & set(opts)) > 1:
        raise SystemExit(f"row {row}: {' and '.join(LAYOUT_OPTIONS)} are two attention layouts; give one")
    if "attn-int8" in opts and ("bf16" not in opts or precision != "int8"):
        raise SystemExit(f"row {row}: attn-int8 keeps a bf16 W8A8 bundle's attention int8, so it needs int8 and bf16")
    return target, precision, set(opts)


def dir_mb(path: Path) -> float:
    return dir_size(path) / 2**20


def write_json(path: Path, data: dict | list) -> None:
    atomic_write_text(path, json.dumps(data, indent=1))


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


# T5-XXL timings: name -> (weights, OpenVINO inference precision hint; None: the plugin's default,
# which optimum-intel runs: bf16 on CPUs with AVX512-BF16 or AMX)
T5_MODES = {
    "torch": None,
    "openvino_fp32": ("fp32", "f32"),
    "openvino_int8w": ("int8-weights", "f32"),
    "openvino_int8w_bf16": ("int8-weights", "bf16"),
    "optimum_fp32": ("fp32", None),
    "optimum_int8w": ("int8-asym", None),
}


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
        if "vae-fp32" not in opts:
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
    for layout in set(LAYOUT_OPTIONS) & opts:  # parse_row refuses more than one
        kwargs["attention_layout"] = layout
    if "hoist" in opts:  # the adaLN modulation once per generation (restructure.hoist_modulation)
        kwargs["restructure"]["hoist_modulation"] = True
    if "text-128" in opts:
        from fewstep.zoo import sd35_medium as sd35

        kwargs["restructure"]["null_slots"] = ALIGNED_TEXT - sd35.CLIP_LENGTH
    if "bf16" in opts:  # OpenVINO's fused float attention in bf16 (benchmarks/ov_attention_precision.py)
        kwargs["inference_precision"] = "bf16"
        if quant and quant["scheme"] == "int8":
            quant["attention"] = "int8" if "attn-int8" in opts else "float"
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
    from timing import log_component_calls

    from fewstep.runtime.bundle import Bundle

    path = a.work / "bundles" / a.row.replace("/", "-")
    start = time.perf_counter()
    bundle = Bundle.open(path)
    load_s = time.perf_counter() - start
    log = log_component_calls(bundle)
    bundle.generate([PROMPT], seed=0)  # warm-up
    e2e = []
    for i in range(a.repeats):
        log.clear()
        start = time.perf_counter()
        bundle.generate([PROMPT], seed=i + 1)
        e2e.append(time.perf_counter() - start)
    step = statistics.median(log["transformer"])
    # a hoisted bundle's step: its body call plus its share of the one modulation call per generation
    modulation = statistics.median(log[MODULATION]) if MODULATION in log else None
    return {
        "e2e_s": statistics.median(e2e),
        "e2e_all_s": e2e,
        "step_s": step + (modulation or 0.0) / len(log["transformer"]),
        **({"body_step_s": step, "modulation_s": modulation} if modulation is not None else {}),
        "components_s": {k: sum(v) for k, v in log.items()},
        "load_s": load_s,
        "peak_rss_mb": peak_rss_mb(),
        "size_mb": dir_mb(path),
        "precision": json.loads((path / "manifest.json").read_text())["precision"],
    }


PROFILE_REPEATS = 5  # profiled steps after the warm-up, each after the reference GEMM (median of 5)


def _bf16_peak(run) -> list[float]:
    """[the reference bf16 GEMM's rate before the run] where it was timed, else []."""
    return [run.references["bf16"]] if "bf16" in run.references else []


def w_profile(a) -> dict:
    """The transformer's op profile (OpenVINO's per-node counters; the run with the median wall
    time of PROFILE_REPEATS): the attention share of the step, the top op types and the weighted
    GEMMs' rate in total and per shape. Before each profiled step the reference int8 GEMM is timed
    in this process, so each step has a floor at a peak measured under the same host load (this
    VM's speed moves by up to 2x within a minute): `floor_pairs`. A bundle compiled at bf16 (its
    float ops, attention among them, in bf16) gets the reference float GEMM at a bf16 hint timed
    there as well: the peak of the arithmetic its attention runs in."""
    import openvino as ov
    from ov_op_profile import attention_ms, gemm_totals, median_run, profile
    from sd35_machine import reference_gemm

    from fewstep.targets.openvino_cpu import compiled_precision

    bundle = a.work / "bundles" / a.row.replace("/", "-")
    manifest = json.loads((bundle / "manifest.json").read_text())
    int8 = reference_gemm(a.work, a.resolution, int8=True)
    references = {"int8": lambda: int8(5)}
    if compiled_precision(ov.Core(), manifest.get("inference_precision", "f32")) == "bf16":
        bf16 = reference_gemm(a.work, a.resolution, int8=False, hint="bf16")
        references["bf16"] = lambda: bf16(5)
    runs = profile(bundle, "transformer", PROFILE_REPEATS, references)
    run = median_run(runs)
    # hoisted: each step's wall time gets its share of the one modulation call per generation
    share_ms = 0.0
    if MODULATION in manifest["components"]:
        steps = len(manifest["pipeline"]["sigmas"]) - 1
        share_ms = statistics.median(r.wall_ms for r in profile(bundle, MODULATION, PROFILE_REPEATS)) / steps
    by = run.by
    total = sum(by.values())
    gemm_gop, gemm_ms = gemm_totals(run.gemms)
    top = sorted(by.items(), key=lambda kv: -kv[1])[:8]
    return {
        "profile_wall_ms": run.wall_ms + share_ms,
        "modulation_ms_per_step": share_ms,
        "profile_counted_ms": total,
        "attention_ms": attention_ms(by),
        "attention_share": attention_ms(by) / total if total else float("nan"),
        # the weighted GEMMs' work and counted time (the rate they reach), in total and per shape
        "gemm_gop": gemm_gop,
        "gemm_ms": gemm_ms,
        "gemm_by_shape": [[list(shape), count, gop, ms] for shape, count, gop, ms in run.gemms],
        # per profiled step: [wall ms, reference int8 GEMM GOP/s just before it, its GEMMs' GOP, their
        # ms(, the reference bf16 GEMM's GFLOP/s just before it, for bundles compiled at bf16)]
        "floor_pairs": [
            [r.wall_ms + share_ms, r.references["int8"], *gemm_totals(r.gemms), *_bf16_peak(r)] for r in runs
        ],
        "top_ops": [[op, kernel, ms] for (op, kernel), ms in top],
    }
