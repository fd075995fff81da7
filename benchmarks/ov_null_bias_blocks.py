"""The null-token bias in real SD3.5-Medium blocks: OpenVINO at bf16 against f32, per joint attention.

    python benchmarks/ov_null_bias_blocks.py [--resolution 256 1024] [--layouts broadcast heads] [--layers 2]

`--layers` real-width SD3.5-Medium blocks (random weights, no dual attention) with the T5 slot
collapsed to one null token (ln(256) key bias, `fewstep/null_tokens.py`; `--null-slots m`: m
tokens, ln(256 / m) each) go through fewstep's own ONNX export (`compile/export.py`, as a
bundle's transformer does) and OpenVINO. Each joint attention's output (the MatMul after its
softmax) is added as a model output; the model is compiled at bf16 and at f32 and run on the
same random inputs (77 CLIP tokens + the null tokens).
Printed: the cosine, bf16 against f32, of the transformer's output and of each attention, and the
NaN share of each bf16 attention. Layouts of the exported bias:

- `broadcast`: (1, 1, 1, keys), what fewstep exported before 2026-12-06 (reproduced here by
  slicing the head axis off the bias before torch's attention);
- `heads`: (1, heads, 1, keys), what it exports now;
- `full-slot`: the control, no collapse and no bias: 77 CLIP tokens + 256 zero tokens.

A model's output can stay close (cosine 0.999) while its attentions are wrong: random weights
give attention a small share of the residual stream. That is why the bug went unseen, and why
the gates compare a bf16 bundle with itself at f32 (`gates.tensor.vs_f32_cosine_min`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from fewstep.gates.metrics import cosine

CLIP_TOKENS, NULL_STANDS_FOR = 77, 256
LAYOUTS = ("broadcast", "heads", "full-slot")


def export(resolution: int, layers: int, layout: str, path: Path, slots: int = 1) -> list:
    """Export the blocks (with the bias as `layout`) to ONNX at `path`; returns the example inputs."""
    import torch

    from fewstep import null_tokens
    from fewstep.compile.export import export_onnx
    from fewstep.components import Component, Transformer
    from fewstep.targets.base import ComponentIO, TensorSpec
    from fewstep.zoo.sd35_medium import SD35Config, build_transformer

    cfg = SD35Config(resolution=resolution).scaled(transformer={"num_layers": layers, "dual_attention_layers": ()})
    torch.manual_seed(0)
    tr = build_transformer(cfg).eval()
    c, s, width, pooled = (tr.config.in_channels, tr.config.sample_size, tr.config.joint_attention_dim,
                           tr.config.pooled_projection_dim)  # fmt: skip
    rng = np.random.default_rng(0)
    slot = NULL_STANDS_FOR if layout == "full-slot" else slots
    text = np.concatenate([rng.standard_normal((1, CLIP_TOKENS, width)), np.zeros((1, slot, width))], 1)
    example = tuple(
        torch.from_numpy(np.asarray(v, np.float32))
        for v in (rng.standard_normal((1, c, s, s)), [750.0], text, rng.standard_normal((1, pooled)))
    )
    io = ComponentIO(
        "transformer",
        (
            TensorSpec("hidden_states", ("batch", c, s, s)),
            TensorSpec("timestep", ("batch",)),
            TensorSpec("encoder_hidden_states", ("batch", CLIP_TOKENS + slot, width)),
            TensorSpec("pooled_projections", ("batch", pooled)),
        ),
        ("sample",),
    )
    comp = Component(io, Transformer(tr, None if layout == "full-slot" else NULL_STANDS_FOR, slot), example)
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def broadcast(q, k, v, attn_mask=None, **kwargs):  # the bias as exported before the fix
        return sdpa(q, k, v, attn_mask=None if attn_mask is None else attn_mask[:, :1], **kwargs)

    if layout == "broadcast":
        null_tokens.F.scaled_dot_product_attention = broadcast
    try:
        export_onnx(comp, path, static_batch=1)
    finally:
        null_tokens.F.scaled_dot_product_attention = sdpa
    return [t.numpy() for t in example]


def compare(resolution: int, layers: int, layout: str, work: Path, slots: int = 1) -> dict:
    import openvino as ov

    path = work / f"blocks-{resolution}-{layout}.onnx"
    feeds = export(resolution, layers, layout, path, slots)
    model = ov.Core().read_model(str(path))
    attentions, bias = [], None
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Softmax" and "/attn/" in op.get_friendly_name():
            attentions.append(next(iter(op.output(0).get_target_inputs())).get_node().output(0))
            before = op.input(0).get_source_output().get_node()
            if before.get_type_name() == "Add":
                bias = bias or str(before.input(1).get_partial_shape())
    model.add_outputs(attentions)
    out = {}
    for hint in ("f32", "bf16"):
        compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint})
        out[hint] = [np.array(v) for v in compiled(feeds).values()]
    pairs = list(zip(out["bf16"], out["f32"]))
    return {
        "resolution": resolution,
        "layout": layout,
        "bias_shape": bias,
        "output_cosine": cosine(np.nan_to_num(pairs[0][0]), pairs[0][1]),
        "attention_cosines": [cosine(np.nan_to_num(b), f) for b, f in pairs[1:]],
        "attention_nan_share": [float(np.isnan(b).mean()) for b, _ in pairs[1:]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--layouts", nargs="+", default=["broadcast", "heads"], choices=LAYOUTS)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--null-slots", type=int, default=1, help="null tokens the slot collapses to (ln(256/m) each)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    print("| px | bias exported as | output cosine, bf16 vs f32 | each joint attention's cosine (NaN share) |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="null-bias-") as work:
        for resolution in a.resolution:
            for layout in a.layouts:
                r = compare(resolution, a.layers, layout, Path(work), a.null_slots)
                rows.append(r)
                each = zip(r["attention_cosines"], r["attention_nan_share"])
                cells = ", ".join(f"{c:.6f} ({n:.2f})" for c, n in each)
                shape = r["bias_shape"] or "no bias"
                print(f"| {resolution} | {layout} {shape} | {r['output_cosine']:.6f} | {cells} |", flush=True)
    if a.json:
        print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
