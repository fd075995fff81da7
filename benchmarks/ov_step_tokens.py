"""Does a whole transformer step get faster when its text token count is aligned?

    python benchmarks/ov_step_tokens.py BUNDLE [--text 78 96 128] [--rounds 6]

`ov_attention_tokens.py` times one attention alone. This times the bundle's own transformer
(compiled as the runtime compiles it) with its text sequence reshaped to each count, so the joint
token count (image + text) takes aligned values: with T5 dropped, SD3.5-Medium at 1024 px runs
4096 + 78 = 4174 tokens; 96 text tokens give 4192 (a multiple of 32). The null-token collapse
could reach such a count exactly (m null tokens, each with a ln(n/m) key bias, weigh as n zero
tokens), so a faster aligned count would be a lever worth building.

The collapsed bundle's key bias is a constant sized to its token count; here every count,
the bundle's own included, gets it as an input instead (zeros, ln(n) on the last key), so all
counts are compiled the same way. Inputs are random (speed does not depend on them). Counts are
interleaved in each round (host load drifts on these VMs); the table gives each count's median
step and in how many rounds it beat the first count.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np


def step_model(xml: Path, text: int, image_tokens: int, null_tokens: int | None):
    """The transformer IR with `text` text tokens; its attention bias constants (collapsed
    bundles) replaced by one input "bias"."""
    import openvino as ov
    import openvino.opset13 as ops

    model = ov.Core().read_model(str(xml))
    ehs = next(p for p in model.inputs if p.get_any_name() == "encoder_hidden_states")
    old_total = image_tokens + ehs.get_partial_shape()[1].get_length()
    shapes = {"encoder_hidden_states": [1, -1, ehs.get_partial_shape()[2].get_length()]}
    if null_tokens:
        found = [
            (op, list(op.input_value(1).get_node().get_output_shape(0)))
            for op in model.get_ordered_ops()
            if op.get_type_name() == "Add"
            and op.get_input_size() == 2
            and op.input_value(1).get_node().get_type_name() == "Constant"
        ]
        # (1, heads, 1, keys) since 2026-12-06; (1, 1, 1, keys) in bundles built before (wrong at bf16)
        found = [(op, shape) for op, shape in found if len(shape) == 4 and shape[2] == 1 and shape[3] == old_total]
        if not found:
            raise SystemExit(f"{xml}: no attention bias of {old_total} keys found")
        heads = found[0][1][1]
        bias = ops.parameter([1, heads, 1, -1], np.float32, name="bias")
        bias.output(0).get_tensor().set_names({"bias"})
        for op, _ in found:
            op.input(1).replace_source_output(bias.output(0))
        model.add_parameters([bias])
        shapes["bias"] = [1, heads, 1, -1]
    model.reshape(shapes)  # dynamic first: the graph's shapes follow the text count
    model.reshape({k: [1, text, v[2]] if k == "encoder_hidden_states" else [1, v[1], 1, image_tokens + text]
                   for k, v in shapes.items()})  # fmt: skip
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--text", type=int, nargs="+", default=[78, 96, 128])
    ap.add_argument("--rounds", type=int, default=6)
    a = ap.parse_args()
    import openvino as ov

    from fewstep.cpu.isa import detect
    from fewstep.targets.openvino_cpu import compiled_precision

    manifest = json.loads((a.bundle / "manifest.json").read_text())
    comp = manifest["components"]["transformer"]
    shape = {i["name"]: i["shape"] for i in comp["io"]["inputs"]}
    _, _, h, w = shape["hidden_states"]
    image_tokens = (h // 2) * (w // 2)
    null = manifest["pipeline"].get("t5_null_tokens")
    core = ov.Core()
    hint = compiled_precision(core, manifest.get("inference_precision", "f32"))
    isa = detect()
    print(f"ISA: {isa.name if isa else 'unknown'}; {a.bundle.name}, {image_tokens} image tokens, hint {hint}")
    rng = np.random.default_rng(0)
    requests = {}
    for text in a.text:
        compiled = core.compile_model(
            step_model(a.bundle / "components" / comp["files"][0], text, image_tokens, null),
            "CPU",
            {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"},
        )
        feeds = {}
        for port in compiled.inputs:
            dims = list(port.get_shape())
            feeds[port.get_any_name()] = rng.standard_normal(dims).astype(np.float32)
        if null:
            feeds["bias"] = np.zeros(compiled.input("bias").get_shape(), np.float32)
            feeds["bias"][..., -1] = math.log(null)
        request = compiled.create_infer_request()
        request.infer(feeds)  # warm-up
        requests[text] = (request, feeds)
    times: dict[int, list[float]] = {t: [] for t in a.text}
    for _ in range(a.rounds):
        for text, (request, feeds) in requests.items():
            start = time.perf_counter()
            request.infer(feeds, share_inputs=True, share_outputs=True)
            times[text].append(time.perf_counter() - start)
    first = a.text[0]
    print("| text tokens | joint tokens | step s (median) | rounds s | faster than the first count in |")
    print("| --- | --- | --- | --- | --- |")
    for text, ts in times.items():
        wins = sum(t < f for t, f in zip(ts, times[first]))
        rounds = ", ".join(f"{t:.2f}" for t in ts)
        print(f"| {text} | {image_tokens + text} | {statistics.median(ts):.3f} | {rounds} | {wins} of {a.rounds} |")


if __name__ == "__main__":
    main()
