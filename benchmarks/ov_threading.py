"""OpenVINO CPU threading settings on a W8A8 SD3.5-Medium transformer: latency per setting.

    python benchmarks/ov_threading.py [--layers 4]

Times the weights-first static int8 IR that `benchmarks/ov_ptq_memory.py --layers N` leaves
under runs/ov-ptq-memory (run that first) with the openvino-cpu target's settings (f32
inference precision, latency hint) and each threading option on top, in one process, the
default measured first and last. Median of 7 after a warm-up.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ov_ptq_memory import ROOT, _feeds
from timing import median_seconds

SETTINGS: dict[str, dict] = {
    "default": {},
    "ENABLE_CPU_PINNING=True": {"ENABLE_CPU_PINNING": True},
    "ENABLE_CPU_PINNING=False": {"ENABLE_CPU_PINNING": False},
    "INFERENCE_NUM_THREADS=2": {"INFERENCE_NUM_THREADS": 2},
    "INFERENCE_NUM_THREADS=1": {"INFERENCE_NUM_THREADS": 1},
    "ENABLE_HYPER_THREADING=False": {"ENABLE_HYPER_THREADING": False},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "ov-ptq-memory")
    args = ap.parse_args()
    import openvino as ov

    xml = args.work / f"{args.layers}-weights-first" / "transformer.int8.xml"
    if not xml.exists():
        raise SystemExit(f"{xml} not found: run benchmarks/ov_ptq_memory.py --layers {args.layers} first")
    core = ov.Core()
    model = core.read_model(str(xml))
    feeds = _feeds(9)
    base = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    times = {}
    for name, extra in [*SETTINGS.items(), ("default (again)", {})]:
        request = core.compile_model(model, "CPU", {**base, **extra}).create_infer_request()
        times[name] = median_seconds(lambda: request.infer(feeds), repeats=7)  # noqa: B023
        print(f"{name}: {times[name] * 1e3:.1f} ms", flush=True)
    ref = (times["default"] + times["default (again)"]) / 2
    print("\n| setting | ms | vs default |\n| --- | --- | --- |")
    for name, t in times.items():
        print(f"| {name} | {t * 1e3:.1f} | {ref / t:.2f}x |")


if __name__ == "__main__":
    main()
