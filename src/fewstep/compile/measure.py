"""Latency and peak memory of a bundle and of the torch pipeline it came from, each in a
fresh process (same machine, same run), one image at a time.

`python -m fewstep.compile.measure MODEL --steps K` measures the torch side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from fewstep.runtime.memory import peak_rss_mb


def _child(args: list[str], threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"measurement failed ({' '.join(args)}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_bundle(bundle: Path, repeats: int = 5, threads: int | None = None) -> dict:
    args = ["-m", "fewstep.runtime.bench", str(bundle), "--repeats", str(repeats)]
    if threads:
        args += ["--threads", str(threads)]
    return _child(args, threads)


def measure_torch(model: Path, steps: int, guidance: float, repeats: int = 5, threads: int | None = None) -> dict:
    args = ["-m", "fewstep.compile.measure", str(model), "--steps", str(steps), "--guidance", str(guidance)]
    args += ["--repeats", str(repeats)]
    return _child(args, threads)


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> None:
    import torch

    from fewstep.sampling import GenerationConfig, generate, sampling_for
    from fewstep.sd3_pipeline import load_pipeline

    ap = argparse.ArgumentParser(description="latency and peak RSS of a torch pipeline, one image at a time")
    ap.add_argument("model")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--guidance", type=float, required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--prompt", default="a red circle left of a blue square")
    args = ap.parse_args(argv)
    if os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    start = time.perf_counter()
    pipe = load_pipeline(args.model)
    load_s = time.perf_counter() - start
    s = sampling_for(pipe, Path(args.model), args.steps, args.guidance)
    times = []
    for i in range(args.repeats + 1):
        cfg = GenerationConfig(steps=s.steps, seed=i, guidance=s.guidance, sigmas=s.call_sigmas, progress=False)
        start = time.perf_counter()
        generate(pipe, [args.prompt], cfg)
        times.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "load_s": load_s,
                "first_image_s": times[0],
                "latency_s": statistics.median(times[1:]),
                "latency_all_s": times[1:],
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
