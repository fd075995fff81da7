"""Where an OpenVINO component's time goes: milliseconds per op type (CPU plugin counters).

    python benchmarks/ov_op_profile.py BUNDLE [--component transformer] [--repeats 3] [--top 15] [--config K=V ...]

Compiles one component of a bundle as the runtime does (its IR's runtime options apply, e.g.
the dynamic-quantization group; the manifest's inference precision), runs it on random inputs
of its static shapes, and sums the plugin's per-node counters by (layer type, kernel) over the
median run. The GEMM share next to the rest shows how far a step can fall toward the GEMM-only
compute floor.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GEMM_OPS = ("FullyConnected", "MatMul", "Convolution")  # FullyConnectedCompressed: compressed weights
# attention: the fused kernels, or its pieces where they stay apart (MatMul = activation x
# activation: the CPU plugin turns every MatMul with constant weights into a FullyConnected)
ATTENTION_OPS = ("ScaledDotProductAttention", "MHA", "Softmax", "MatMul")


# the CPU plugin fuses attention into generic `Subgraph` nodes (snippets) as well; a fused node
# counts as attention when the original ops it replaced include one of these
ATTENTION_ORIGINS = ("ScaledDotProductAttention", "Softmax")
ATTENTION_TAG = "[attention]"

Shape = tuple[int, int, int]  # a weighted GEMM's M, K, N


def attention_ms(by: dict[tuple[str, str], float]) -> float:
    """Milliseconds in attention (the scores, softmax and weighted sum) of one profiled run."""
    return sum(ms for (op, _), ms in by.items() if op in ATTENTION_OPS or op.endswith(ATTENTION_TAG))


def attention_nodes(compiled, model) -> set[str]:
    """Names of the compiled model's executed nodes that hold (part of) an attention: fused nodes
    whose `originalLayersNames` name an original op of an ATTENTION_ORIGINS type."""
    kinds = {op.get_friendly_name(): op.get_type_name() for op in model.get_ops()}
    nodes = set()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        names = info["originalLayersNames"].astype(str).split(",") if "originalLayersNames" in info else []
        if any(kinds.get(name) in ATTENTION_ORIGINS for name in names):
            nodes.add(op.get_friendly_name())
    return nodes


def by_op(request, attention: set[str]) -> dict[tuple[str, str], float]:
    """Milliseconds of the request's last run per (layer type, kernel); fused attention nodes get
    their layer type tagged with ATTENTION_TAG."""
    by: dict[tuple[str, str], float] = defaultdict(float)
    for info in request.get_profiling_info():
        op = info.node_type + (ATTENTION_TAG if info.node_name in attention else "")
        by[(op, info.exec_type)] += info.real_time.total_seconds() * 1e3
    return dict(by)


def gemm_shapes(compiled) -> dict[str, Shape]:
    """(M, K, N) of each FullyConnected node (the weighted GEMMs) of the compiled model, from the
    runtime model's static shapes, by node name (M: every output dimension but the last)."""
    shapes = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        if not op.get_rt_info()["layerType"].astype(str).startswith("FullyConnected"):
            continue
        x, y = op.input(0).get_partial_shape(), op.output(0).get_partial_shape()
        if x.is_static and y.is_static:
            out = y.to_shape()
            shapes[op.get_friendly_name()] = (int(np.prod(out[:-1])), x.to_shape()[-1], out[-1])
    return shapes


def gemm_by_shape(shapes: dict[str, Shape], request) -> list[tuple[Shape, int, float, float]]:
    """(shape, nodes, GOP, ms) per GEMM shape of the request's last run (`shapes`: `gemm_shapes`),
    slowest total first: which GEMMs keep the step's GEMM rate below the peak."""
    ms = {i.node_name: i.real_time.total_seconds() * 1e3 for i in request.get_profiling_info() if i.node_name in shapes}
    by: dict[Shape, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for name, (m, k, n) in shapes.items():
        entry = by[(m, k, n)]
        entry[0] += 1
        entry[1] += 2 * m * k * n / 1e9
        entry[2] += ms.get(name, 0.0)
    return sorted(((shape, int(c), gop, t) for shape, (c, gop, t) in by.items()), key=lambda r: -r[3])


def gemm_totals(rows: list) -> tuple[float, float]:
    """(GOP, ms) summed over `gemm_by_shape` rows: the weighted GEMMs' work and counted time."""
    return sum(r[2] for r in rows), sum(r[3] for r in rows)


def print_gemm_shapes(rows: list, top: int, title: str = "GEMM M x K x N") -> None:
    """`gemm_by_shape` rows (or their JSON lists) as a markdown table, the `top` slowest first."""
    print(f"| {title} | nodes | GOP | ms | GOP/s |")
    print("| --- | --- | --- | --- | --- |")
    for (m, k, n), count, gop, ms in rows[:top]:
        print(f"| {m} x {k} x {n} | {count} | {gop:.1f} | {ms:.1f} | {gop / ms * 1e3 if ms else float('nan'):.0f} |")


@dataclass
class ProfiledRun:
    """One profiled run of a component: wall ms, ms per (layer type, kernel), `gemm_by_shape`
    rows, and the reference GEMMs' rates (GOP/s by name, e.g. int8 and bf16) timed just before it
    (when `profile` was given references)."""

    wall_ms: float
    by: dict[tuple[str, str], float]
    gemms: list[tuple[Shape, int, float, float]]
    references: dict[str, float] = field(default_factory=dict)


@dataclass
class ProfiledComponent:
    """One component of a bundle compiled as the runtime compiles it, with the plugin's counters
    on, a request and random inputs of its static shapes, and its attention nodes (`by_op`)."""

    compiled: object
    request: object
    feeds: dict[str, np.ndarray]
    attention: set[str]


def open_profiled(bundle: Path, component: str, extra: dict[str, str] | None = None) -> ProfiledComponent:
    """Compile `component` of `bundle` as the runtime does (the manifest's inference precision,
    the component's own where it has one), with PERF_COUNT and `extra` plugin properties."""
    import openvino as ov

    manifest = json.loads((bundle / "manifest.json").read_text())
    comp = manifest["components"][component]
    from fewstep.targets.openvino_cpu import compiled_precision

    core = ov.Core()
    # as the runtime compiles it: the component's own precision where it has one (the hoisted modulation: f32)
    hint = compiled_precision(core, comp.get("inference_precision") or manifest.get("inference_precision", "f32"))
    config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True} | (extra or {})
    model = core.read_model(str(bundle / "components" / comp["files"][0]))
    compiled = core.compile_model(model, "CPU", config)
    rng = np.random.default_rng(0)
    feeds = {}
    for port in compiled.inputs:
        shape = list(port.get_shape())
        if port.get_element_type().get_type_name() in ("i64", "i32"):
            feeds[port.get_any_name()] = np.zeros(shape, np.int64)
        else:
            feeds[port.get_any_name()] = rng.standard_normal(shape).astype(np.float32)
    return ProfiledComponent(compiled, compiled.create_infer_request(), feeds, attention_nodes(compiled, model))


def profile(
    bundle: Path,
    component: str,
    repeats: int,
    references: dict[str, Callable[[], float]] | None = None,
    extra: dict[str, str] | None = None,
) -> list[ProfiledRun]:
    """`repeats` profiled runs of one component of a bundle after one warm-up, compiled as the
    runtime compiles it; `references` (GEMM rates in GOP/s, by name) are timed right before each
    run, so each run has peaks measured under the same host load. `extra`: more CPU plugin
    properties to try (e.g. SNIPPETS_MODE)."""
    c = open_profiled(bundle, component, extra)
    shapes = gemm_shapes(c.compiled)
    c.request.infer(c.feeds)  # warm-up
    runs = []
    for _ in range(repeats):
        refs = {name: rate() for name, rate in (references or {}).items()}
        start = time.perf_counter()
        c.request.infer(c.feeds)
        wall = time.perf_counter() - start
        runs.append(ProfiledRun(wall * 1e3, by_op(c.request, c.attention), gemm_by_shape(shapes, c.request), refs))
    return runs


def median_run(runs: list[ProfiledRun]) -> ProfiledRun:
    """The run with the median wall time."""
    return sorted(runs, key=lambda r: r.wall_ms)[len(runs) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--component", default="transformer")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument(
        "--config", nargs="+", default=[], metavar="KEY=VALUE", help="more CPU plugin properties (SNIPPETS_MODE=...)"
    )
    a = ap.parse_args()
    extra = dict(kv.split("=", 1) for kv in a.config)
    run = median_run(profile(a.bundle, a.component, a.repeats, extra=extra))
    by, wall, gemms = run.by, run.wall_ms, run.gemms
    gop, gemm_ms = gemm_totals(gemms)
    total = sum(by.values())
    print(f"{a.bundle.name}/{a.component}: wall {wall:.1f} ms, counted {total:.1f} ms")
    print("| op type | kernel | ms | share |")
    print("| --- | --- | --- | --- |")
    for (op, kernel), ms in sorted(by.items(), key=lambda kv: -kv[1])[: a.top]:
        print(f"| {op} | {kernel} | {ms:.1f} | {ms / total:.1%} |")
    gemm = sum(ms for (op, _), ms in by.items() if op.startswith(GEMM_OPS))
    print(f"GEMM-type ops ({', '.join(op + '*' for op in GEMM_OPS)}): {gemm:.1f} ms = {gemm / total:.1%}")
    if gemm_ms:
        print(f"weighted GEMMs (FullyConnected*): {gop:.1f} GOP in {gemm_ms:.1f} ms = {gop / gemm_ms * 1e3:.0f} GOP/s")
        print_gemm_shapes(gemms, a.top)
    att = attention_ms(by)
    kinds = ", ".join(ATTENTION_OPS) + f", fused nodes replacing {' or '.join(ATTENTION_ORIGINS)}"
    print(f"attention ({kinds}): {att:.1f} ms = {att / total:.1%}")
    print(f"(the run with the median wall time of {a.repeats})")


if __name__ == "__main__":
    main()
