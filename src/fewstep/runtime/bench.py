"""`python -m fewstep.runtime.bench BUNDLE`: latency and peak memory of a bundle, torch-free.

Run in its own process so peak RSS belongs to the bundle alone; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from fewstep.runtime.bundle import Bundle
from fewstep.runtime.memory import peak_rss_mb


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--prompt", default="a red circle left of a blue square")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    bundle = Bundle.open(args.bundle, threads=args.threads)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    bundle.generate([args.prompt], seed=0)
    first_s = time.perf_counter() - start
    times = []
    for i in range(args.repeats):
        start = time.perf_counter()
        bundle.generate([args.prompt], seed=i + 1)
        times.append(time.perf_counter() - start)
    heavy = sorted(m for m in ("torch", "diffusers", "transformers") if m in sys.modules)
    print(
        json.dumps(
            {
                "load_s": load_s,
                "first_image_s": first_s,
                "latency_s": statistics.median(times),
                "latency_all_s": times,
                "peak_rss_mb": peak_rss_mb(),
                "heavy_modules_imported": heavy,
            }
        )
    )


if __name__ == "__main__":
    main()
