"""The tables and ratio line of `sd35_medium.py`, from the cached results of every row."""

from __future__ import annotations

import os
import statistics

from ov_op_profile import print_gemm_shapes
from sd35_workers import FEWSTEP_ROWS, OPTIMUM_LABELS, OPTIMUM_MODES, parse_row

# precision class: (fewstep label prefixes, optimum modes' labels)
PRECISION_CLASSES = {
    "fp32": (("fp32", "fp16-weights"), (OPTIMUM_LABELS["fp32"],)),
    "int8": (("static int8", "int8-weights"), tuple(OPTIMUM_LABELS[m] for m in ("int8", "int8-hybrid", "int8-full"))),
    "int4": (("int4-weights",), (OPTIMUM_LABELS["int4"],)),
}


def report(a, res: dict) -> dict:
    machine, t5, teacher = res.get("machine"), res.get("t5"), res.get("diffusers")
    t5_s = t5["seconds"] if t5 else float("nan")
    fl = machine["flops"] if machine else {}
    isa = machine.get("isa", "not recorded") if machine else "not recorded"
    cores = os.cpu_count()
    print(f"\n# SD3.5-Medium architecture, {a.resolution} px, random weights, this machine ({cores} cores, ISA {isa})")
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
            f"int8 weights {_t5_seconds(t5, 'openvino_int8w'):.2f} s, "
            f"in bf16 {_t5_seconds(t5, 'openvino_int8w_bf16'):.2f} s "
            f"(optimum's asymmetric, default group and precision: {_t5_seconds(t5, 'optimum_int8w'):.2f} s; its fp32 "
            f"weights at the default precision: {_t5_seconds(t5, 'optimum_fp32'):.2f} s) ({t5['note']})"
        )
    rows = []
    if teacher:
        step = teacher["step_s"]
        rows.append(("diffusers fp32, 28 steps, CFG", teacher["e2e_28_s"] + t5_s, step, "batch2", teacher, "fp32"))
        rows.append(("diffusers fp32, 4 steps, CFG", teacher["e2e_4_s"] + t5_s, step, "batch2", teacher, "fp32"))
    for mode in OPTIMUM_MODES:
        d = res.get(f"optimum/{mode}")
        if d:  # its 1-layer T5 stand-in swapped for T5-XXL in OpenVINO in the same weight format
            t5_peer = _t5_seconds(t5, "optimum_fp32" if mode == "fp32" else "optimum_int8w")
            e2e = d["e2e_s"] - d["components_s"].get("text_encoder_3", 0.0) + t5_peer
            arith = "fp32" if mode == "fp32" else "w8a8" if mode == "int8-full" else "int8"
            rows.append((f"optimum-intel {OPTIMUM_LABELS[mode]}, 4 steps", e2e, d["step_s"], "batch1", d, arith))
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
        vae = " + int8 VAE" if "vae-int8" in opts or (p == "int8" and "vae-fp32" not in opts) else ""
        label = f"fewstep {t} {'static int8 (W8A8)' if p == 'int8' else p}{vae}, 4 steps"
        # a bf16 W8A8 bundle's float attention runs in bf16: the floor of that arithmetic charges it at the bf16 peak
        d = {**d, "float_attention": p == "int8" and "bf16" in opts and "attn-int8" not in opts}
        if "bf16" in opts:  # its floor still charges attention at the int8 peak (the stricter floor)
            attention = "float" if d["float_attention"] else "int8"
            label += ", bf16 arithmetic" + (f" (attention {attention})" if p == "int8" else "")
        if "hoist" in opts:  # its step: the body call plus a K-th of the one modulation call per generation
            label += ", adaLN modulation hoisted"
        if "tokens" in opts:  # compile's attention_layout (the other rows: diffusers' head-major graph)
            label += ", attention layout: q, k, v token-major"
        if "keys" in opts:
            label += ", attention layout: k and v token-major"
        if "no-t5" in opts:
            # text-128: 51 null tokens; its floor keeps the 1-token FLOPs (2 % fewer: the stricter floor)
            null = "51 null tokens, 128 text tokens" if "text-128" in opts else "1 null token"
            rows.append((f"{label}, T5 dropped ({null})", d["e2e_s"], d["step_s"], "batch1_no_t5", d, arith))
            continue
        # T5 kept: OpenVINO T5-XXL, int8 weights beside a quantized transformer (torch fp32 for ORT)
        t5_row = (
            "torch" if t != "openvino-cpu" else ("openvino_fp32" if p in ("fp32", "fp16-weights") else "openvino_int8w")
        )
        t5_row += "_bf16" if "bf16" in opts and t5_row == "openvino_int8w" else ""
        rows.append((label, d["e2e_s"] + _t5_seconds(t5, t5_row), d["step_s"], "batch1", d, arith))
    # The floor's int8 peak: the machine row's standalone GEMM, or the fastest weighted-GEMM rate a
    # bundle's op profile reached, whichever is higher (a floor must not sit above what was run)
    rates = [_gemm_gops(d) for *_, d, _ in rows if d.get("gemm_ms")]
    if machine and rates and max(rates) > machine["int8_peak_gops"]:
        print(
            f"int8 peak for the floor: {max(rates):.0f} GOP/s, the fastest bundle GEMMs in the op profiles "
            f"(the standalone GEMM reached {machine['int8_peak_gops']:.0f})"
        )
        machine = {**machine, "int8_peak_gops": max(rates)}
    print(
        "\n| path | end to end s (T5 incl.) | transformer step s | step / compute floor "
        "| step / floor, same process (range) | attention share | GEMMs GOP/s | peak RSS MB | size MB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, e2e, step, flops, d, arith in rows:
        floor = _floor(machine, flops, arith)
        ratio = f"{step / floor:.2f}x" if floor else ""
        same = _floor_same_run(machine, flops, arith, d)
        same_ratio = f"{same[0]:.2f}x ({same[1]:.2f}–{same[2]:.2f})" if same else ""
        size = f"{d['size_mb']:.0f}" if d.get("size_mb") else ""
        att = f"{d['attention_share']:.0%}" if d.get("attention_share") is not None else ""
        gemm = f"{_gemm_gops(d):.0f}" if d.get("gemm_ms") else ""
        print(
            f"| {label} | {e2e:.1f} | {step:.2f} | {ratio} | {same_ratio} | {att} | {gemm} "
            f"| {d['peak_rss_mb']:.0f} | {size} |"
        )
    ov = [
        (e2e, lbl, d, arith, flops) for lbl, e2e, _, flops, d, arith in rows if lbl.startswith("fewstep openvino-cpu")
    ]
    best = min(ov, key=lambda r: r[0]) if ov else None
    ratios: dict = {}
    print("\n## ratios (fewstep's best 4-step OpenVINO bundle)")
    ratios: dict = {"resolution": a.resolution, "isa": machine.get("isa") if machine else None}
    # each precision class: fewstep's fastest bundle vs optimum-intel's fastest, both keeping T5
    # (and fewstep's fastest with T5 dropped beside it)
    for cls, (ours, theirs) in PRECISION_CLASSES.items():
        peers = [(e2e, lbl) for lbl, e2e, *_ in rows if lbl.startswith(tuple(f"optimum-intel {t}," for t in theirs))]
        if not peers:
            continue
        peer = min(peers)
        for dropped in (False, True):
            mine = [
                r for r in ov if r[1].startswith(tuple(f"fewstep openvino-cpu {p}" for p in ours))
                and ("T5 dropped" in r[1]) == dropped
            ]  # fmt: skip
            if not mine:
                continue
            fastest = min(mine, key=lambda r: r[0])
            ratio = peer[0] / fastest[0]
            key = f"speedup_vs_optimum_intel_{cls}" + ("_t5_dropped" if dropped else "")
            ratios[key] = ratio
            ratios[key + "_pair"] = f"{fastest[1]} vs {peer[1]}"
            print(f"{cls}: {fastest[1]} vs {peer[1]} (optimum's fastest {cls}; T5 kept there): {ratio:.2f}x")
    if "speedup_vs_optimum_intel_int8" in ratios:  # the headline pair: int8 against int8
        ratios["speedup_vs_optimum_intel"] = ratios["speedup_vs_optimum_intel_int8"]
        ratios["speedup_vs_optimum_intel_pair"] = ratios["speedup_vs_optimum_intel_int8_pair"]
        if "speedup_vs_optimum_intel_int8_t5_dropped" in ratios:
            ratios["speedup_vs_optimum_intel_t5_dropped"] = ratios["speedup_vs_optimum_intel_int8_t5_dropped"]
    if best and teacher:
        teacher_s = teacher["e2e_28_s"] + t5_s  # the teacher always runs T5-XXL
        ratios["speedup_vs_diffusers_teacher"] = teacher_s / best[0]
        print(f"vs diffusers teacher at 28 steps with CFG: {ratios['speedup_vs_diffusers_teacher']:.1f}x ({best[1]})")
        for dropped in (False, True):  # the pair: fewstep's fastest with T5 kept, and with T5 dropped
            mine = [r for r in ov if ("T5 dropped" in r[1]) == dropped]
            if mine:
                fastest = min(mine, key=lambda r: r[0])
                key = "speedup_vs_diffusers_teacher_t5_" + ("dropped" if dropped else "kept")
                ratios[key], ratios[key + "_s"] = teacher_s / fastest[0], [fastest[0], teacher_s]
                print(
                    f"  T5 {'dropped' if dropped else 'kept'}: {fastest[0]:.1f} vs {teacher_s:.0f} s, "
                    f"{ratios[key]:.1f}x ({fastest[1]})"
                )
    if best and machine:
        floor = _floor(machine, best[4], best[3])
        ratios["floor_ratio"] = best[2]["step_s"] / floor
        print(f"transformer step / compute floor of its arithmetic: {ratios['floor_ratio']:.2f}x")
        same = _floor_same_run(machine, best[4], best[3], best[2])
        if same:
            ratios["floor_ratio_same_run"], *ratios["floor_ratio_same_run_range"] = same
            print(
                f"transformer step / floor at the int8 peak timed right before it, same process: {same[0]:.2f}x "
                f"(median of {len(best[2]['floor_pairs'])} profiled steps; {same[1]:.2f}–{same[2]:.2f})"
            )
        bf16 = best[2]["float_attention"] and _floor_same_run(machine, best[4], best[3], best[2], bf16_attention=True)
        if bf16:
            ratios["floor_ratio_bf16_attention"], *ratios["floor_ratio_bf16_attention_range"] = bf16
            peaks = [p[4] for p in best[2]["floor_pairs"] if len(p) > 4]
            print(
                f"the same with its float attention at the bf16 GEMM peak timed right before it "
                f"({min(peaks):.0f}–{max(peaks):.0f} GFLOP/s), the arithmetic it runs in: {bf16[0]:.2f}x "
                f"({bf16[1]:.2f}–{bf16[2]:.2f})"
            )
        if best[2].get("gemm_ms"):  # the floor's int8 peak is only as good as its GEMM: set it beside the bundle's
            ratios["bundle_gemm_gops"] = _gemm_gops(best[2])
            print(
                f"its weighted GEMMs in the op profile: {ratios['bundle_gemm_gops']:.0f} GOP/s "
                f"(the floor's int8 peak: {machine['int8_peak_gops']:.0f} GOP/s)"
            )
            if best[2].get("gemm_by_shape"):
                print()
                print_gemm_shapes(best[2]["gemm_by_shape"], 8, "its GEMMs: M x K x N")
    if best and teacher:
        teacher_rss = teacher["peak_rss_mb"] + (t5["weights_mb_fp32"] if t5 else 0)
        ratios["rss_ratio"] = best[2]["peak_rss_mb"] / teacher_rss
        print(f"peak RSS vs teacher pipeline (+ T5-XXL fp32 weights): {ratios['rss_ratio']:.2f}x")
    return ratios


def _gemm_gops(d: dict) -> float:
    """GOP/s of a bundle row's weighted GEMMs in its op profile."""
    return d["gemm_gop"] / d["gemm_ms"] * 1e3


def _t5_seconds(t5: dict | None, mode: str) -> float:
    """T5-XXL seconds per prompt in one of T5_MODES (torch fp32 if that mode was not measured)."""
    if not t5:
        return float("nan")
    # results cached before a mode existed: its f32 twin (they were all timed at f32 then)
    older = {"optimum_fp32": "openvino_fp32", "openvino_int8w_bf16": "openvino_int8w"}
    if mode != "torch" and f"{mode}_seconds" not in t5 and mode in older:
        mode = older[mode]
    key = "seconds" if mode == "torch" else f"{mode}_seconds"
    return t5.get(key, t5["seconds"])


def _floor_same_run(
    machine: dict | None, flops: str, arith: str, d: dict, bf16_attention: bool = False
) -> tuple[float, float, float] | None:
    """(median, min, max) over the profiled steps of a static int8 (W8A8) row of step / floor, each
    step's floor at the int8 peak measured right before it in the same process: the reference GEMM,
    or the step's own weighted GEMMs where they ran faster. Host load that slows the step slows
    that peak too; the machine row's peak was measured in another process, minutes or hours apart.
    `bf16_attention`: for a W8A8 bundle compiled at bf16, whose float attention (`attention:
    float`) runs in bf16, charge that attention at the bf16 peak timed right before each step (the
    floor of the arithmetic it runs) instead of the int8 peak (the stricter floor, which only int8
    attention as fast as the int8 GEMMs could reach); steps without a bf16 peak are left out."""
    pairs = [p for p in d.get("floor_pairs") or [] if len(p) > 4 or not bf16_attention]
    if arith != "w8a8" or not pairs or not machine or f"transformer_{flops}" not in machine["flops"]:
        return None
    floors = step_floors(machine, flops, pairs, bf16_attention)
    ratios = [pair[0] / 1e3 / floor for pair, floor in zip(pairs, floors)]
    return statistics.median(ratios), min(ratios), max(ratios)


def step_floors(machine: dict, flops: str, pairs: list, bf16_attention: bool = False) -> list[float]:
    """Each profiled W8A8 step's floor in seconds: its int8 peak the reference GEMM timed right before
    it, or the step's own weighted GEMMs where they ran faster (`bf16_attention`: attention at the bf16
    peak timed with it)."""
    attention = machine["flops"].get(f"transformer_{flops}_attention", 0)
    floors = []
    for _, reference, gemm_gop, gemm_ms, *bf16 in pairs:
        peak = max(reference, gemm_gop / gemm_ms * 1e3 if gemm_ms else 0.0)
        floor = _floor({**machine, "int8_peak_gops": peak}, flops, "w8a8")
        if bf16_attention:
            floor += attention / (bf16[0] * 1e9) - attention / (peak * 1e9)
        floors.append(floor)
    return floors


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
