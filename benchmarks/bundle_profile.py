"""Where a bundle's time goes: milliseconds per component call, one image at a time.

Usage: python benchmarks/bundle_profile.py BUNDLE [BUNDLE ...] [--repeats 30]

Wraps each component session with a timer, generates `--repeats` one-image requests after a
warm-up and prints per-component totals per image (text encoders once, the transformer once
per step, the VAE decoder once) for every bundle, side by side.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from fewstep.runtime.bundle import Bundle


def profile(path: str, repeats: int) -> dict[str, float]:
    bundle = Bundle.open(path)
    spent: dict[str, float] = defaultdict(float)
    for name, session in bundle.sessions.items():
        inner = session.run

        def timed(feeds, _inner=inner, _name=name):
            start = time.perf_counter()
            out = _inner(feeds)
            spent[_name] += time.perf_counter() - start
            return out

        session.run = timed
    bundle.generate(["a red circle left of a blue square"], seed=0)  # warm-up
    spent.clear()
    start = time.perf_counter()
    for i in range(repeats):
        bundle.generate(["two green triangles"], seed=i + 1)
    total = (time.perf_counter() - start) / repeats
    out = {k: v / repeats * 1e3 for k, v in spent.items()}
    out["(sampler, tokenizers, numpy)"] = total * 1e3 - sum(out.values())
    out["total"] = total * 1e3
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+")
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    results = {b: profile(b, args.repeats) for b in args.bundles}
    keys = list(dict.fromkeys(k for r in results.values() for k in r))
    print("| ms per image | " + " | ".join(results) + " |")
    print("|" + " --- |" * (len(results) + 1))
    for k in keys:
        print(f"| {k} | " + " | ".join(f"{r.get(k, 0.0):.2f}" for r in results.values()) + " |")


if __name__ == "__main__":
    main()
