"""How far a bf16 bundle's velocity is from the same files run at f32, per timestep.

    python benchmarks/ov_timestep_precision.py BUNDLE [BUNDLE ...] [--timesteps 1000 858 500 37.5] [--json]
    python benchmarks/ov_timestep_precision.py --ir MODEL.xml --shape hidden_states=1,16,32,32 ... [--mark]

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

`--ir` takes any OpenVINO transformer IR instead (e.g. optimum-intel's export,
`<export>/transformer/openvino_model.xml`), with its dynamic inputs fixed by `--shape`, and
compares its output compiled at bf16 against f32 on random inputs; `--mark` also runs the same IR
with fewstep's phase marks added (`targets/openvino_phases.py`, through a scratch IR).
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


def ir_rows(xml: Path, shapes: dict[str, list[int]], timesteps: list[float], mark: bool) -> list[dict]:
    """A raw IR's output at bf16 against f32 per timestep; with `mark`, also the marked IR's."""
    import tempfile

    import openvino as ov

    from fewstep.gates.metrics import cosine
    from fewstep.targets.openvino_phases import keep_phases_f32, reread

    def read():
        model = ov.Core().read_model(str(xml))
        model.reshape({k: ov.PartialShape(v) for k, v in shapes.items()})
        return model

    variants = {"as exported": read()}
    if mark:
        marked = read()
        keep_phases_f32(marked)
        variants["phases marked"] = reread(marked, Path(tempfile.gettempdir()))  # the marks take effect from an IR
    rng = np.random.default_rng(0)
    feeds = {
        p.get_any_name(): rng.standard_normal(list(p.get_shape())).astype(np.float32)
        for p in variants["as exported"].inputs
    }
    core, rows = ov.Core(), []
    for name, model in variants.items():
        compiled = {h: core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": h}) for h in ("bf16", "f32")}
        for t in timesteps:
            step = {**feeds, "timestep": np.full(feeds["timestep"].shape, t, np.float32)}
            got = {h: c(step)[0] for h, c in compiled.items()}
            rows.append({"ir": f"{xml.parent.name}/{xml.name} ({name})", "timestep": t,
                         "cosine": cosine(got["bf16"], got["f32"])})  # fmt: skip
            print(rows[-1], flush=True)
        del compiled
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", type=Path, nargs="*")
    ap.add_argument("--ir", type=Path, help="a transformer IR to check instead of bundles")
    ap.add_argument("--shape", nargs="*", default=[], help="input=dims,... for the IR's dynamic inputs")
    ap.add_argument("--mark", action="store_true", help="also run the IR with fewstep's phase marks")
    ap.add_argument("--timesteps", type=float, nargs="+", default=[1000.0, 858.0, 500.0, 37.5])
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.ir is not None:
        shapes = {k: [int(d) for d in v.split(",")] for k, v in (s.split("=", 1) for s in a.shape)}
        rows = ir_rows(a.ir, shapes, a.timesteps, a.mark)
        print("| IR | t | output, bf16 against f32 |\n| --- | --- | --- |")
        for r in rows:
            print(f"| {r['ir']} | {r['timestep']:g} | {r['cosine']:.6f} |")
        if a.json:
            print(json.dumps({"rows": rows}))
        return
    if not a.bundles:
        ap.error("give bundles, or --ir")
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
