"""How far a bf16 bundle's velocity is from the same files run at f32, per timestep.

    python benchmarks/ov_timestep_precision.py BUNDLE [BUNDLE ...] [--timesteps 1000 858 500 37.5] [--json]

OpenVINO's CPU plugin, asked for bf16, converts the `timestep` input to bf16 before the
sinusoidal embedding's product t * freq (its Sin / Cos then run in f32): from t = 512 on bf16
spaces values 4 apart, so t = 858 becomes 856 and the high-frequency phases are wrong. The
error therefore grows with t. For each bundle (opened with fewstep's runtime, once at its own
precision and once at f32, `Bundle.open(inference_precision="f32")`), on one image's random
inputs (`ov_step_ab.step_feeds`), each timestep gives:

- a whole bundle: the transformer's output, bf16 against f32;
- a hoisted bundle (`restructure.hoist_modulation`): the modulation component's IR compiled at
  bf16 against f32 (what the runtime avoids by running it at f32), the body at bf16 against f32
  on the same f32 modulation, and the velocity as the runtime computes it against all-f32.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from ov_step_ab import step_feeds  # noqa: E402


def velocity(bundle, feeds: dict[str, np.ndarray], t: float) -> np.ndarray:
    """The transformer's output at timestep t, through the bundle's own components."""
    cond = {k: v for k, v in feeds.items() if k in ("encoder_hidden_states", "pooled_projections")}
    x, times = feeds["hidden_states"], np.full((1,), t, np.float32)
    return bundle.velocity(x, times, bundle.condition(cond, [t]) if bundle.hoisted else cond)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", type=Path, nargs="+")
    ap.add_argument("--timesteps", type=float, nargs="+", default=[1000.0, 858.0, 500.0, 37.5])
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    import openvino as ov

    from fewstep.gates.metrics import cosine
    from fewstep.runtime.bundle import Bundle
    from fewstep.runtime.manifest import MODULATION

    rows = []
    for path in a.bundles:
        own, f32 = Bundle.open(path), Bundle.open(path, inference_precision="f32")
        if own.manifest.inference_precision == "f32":
            raise SystemExit(f"{path}: an f32 bundle; give one built with inference_precision: bf16")
        feeds = step_feeds(own)
        if own.hoisted:  # step_feeds shapes the body's inputs: the conditioning comes from a plain one
            rng = np.random.default_rng(0)
            width = own.manifest.components[MODULATION].io.inputs[1].shape[1]
            feeds["pooled_projections"] = rng.standard_normal((1, int(width))).astype(np.float32)
            ir = str(path / "components" / own.manifest.components[MODULATION].files[0])
            core = ov.Core()
            ir_bf16 = core.compile_model(ir, "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
            ir_f32 = core.compile_model(ir, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            rows_per_call = own.manifest.components[MODULATION].io.static_sizes.get("batch") or 1
        for t in a.timesteps:
            row = {"bundle": path.name, "timestep": t, "hoisted": own.hoisted}
            row["velocity_cosine"] = cosine(velocity(own, feeds, t), velocity(f32, feeds, t))
            if own.hoisted:
                mfeeds = {
                    "timestep": np.full((rows_per_call,), t, np.float32),
                    "pooled_projections": np.repeat(feeds["pooled_projections"], rows_per_call, 0),
                }
                exact = ir_f32(mfeeds)[0]
                row["modulation_ir_at_bf16_cosine"] = cosine(ir_bf16(mfeeds)[0], exact)
                body = {
                    "hidden_states": feeds["hidden_states"],
                    "encoder_hidden_states": feeds["encoder_hidden_states"],
                    "modulation": exact[:1],
                }
                row["body_cosine"] = cosine(
                    own.run_component("transformer", body)["sample"], f32.run_component("transformer", body)["sample"]
                )
            rows.append(row)
            print(json.dumps(row) if a.json else row, flush=True)
    print("| bundle | t | velocity, bf16 vs f32 | modulation IR compiled at bf16 vs f32 | body bf16 vs f32 |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        mod = f"{r['modulation_ir_at_bf16_cosine']:.5f}" if r["hoisted"] else ""
        body = f"{r['body_cosine']:.6f}" if r["hoisted"] else ""
        print(f"| {r['bundle']} | {r['timestep']:g} | {r['velocity_cosine']:.6f} | {mod} | {body} |")
    if a.json:
        print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
