"""ONNX Runtime's MMDiT fusions on SD3.5-Medium-width transformer blocks: speed and parity.

    python benchmarks/ort_mmdit_fusion.py [--layers 2] [--resolution 256] [--repeats 5]

Builds the real SD3.5-Medium transformer configuration cut to `--layers` blocks (dual
attention in each, as in layers 0-12), exports it as the onnxruntime-cpu target does, and runs
it in ONNX Runtime (CPU, ORT_ENABLE_ALL) as exported and after `onnxruntime.transformers`'
optimizer with model_type="mmdit" (MultiHeadAttention, LayerNorm, FastGelu fusions), with the
full text slot (77 CLIP + 256 T5 tokens) and with T5 dropped (one null token). Prints the
fused-operator counts, ms per call of each and the ratio, and the cosine to torch.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from timing import median_seconds


def _session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--resolution", type=int, choices=(256, 512), default=256)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()

    from onnxruntime.transformers.optimizer import optimize_model

    from fewstep.compile.export import export_onnx
    from fewstep.components import Component, Transformer, torch_outputs
    from fewstep.targets.base import ComponentIO, TensorSpec
    from fewstep.zoo import sd35_medium as sd35

    torch.manual_seed(0)
    cfg = sd35.SD35Config(resolution=a.resolution)
    layers = {"num_layers": a.layers, "dual_attention_layers": tuple(range(a.layers))}
    model = sd35.build_transformer(cfg.scaled(transformer=layers)).eval()
    s, width = a.resolution // 8, cfg.transformer["joint_attention_dim"]
    pooled = cfg.transformer["pooled_projection_dim"]
    print(f"SD3.5-Medium transformer, {a.layers} of 24 blocks, {a.resolution} px, batch 1, ONNX Runtime CPU")
    print("| text slot | fused ops | as exported ms | mmdit-optimized ms | speedup | cosine to torch |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, null in (("77 + 256 T5 tokens", None), ("77 + 1 null token", sd35.T5_LENGTH)):
        text = sd35.CLIP_LENGTH + (1 if null else sd35.T5_LENGTH)
        io = ComponentIO(
            "transformer",
            (
                TensorSpec("hidden_states", ("batch", 16, s, s)),
                TensorSpec("timestep", ("batch",)),
                TensorSpec("encoder_hidden_states", ("batch", text, width)),
                TensorSpec("pooled_projections", ("batch", pooled)),
            ),
            ("sample",),
        )
        example = (
            torch.randn(1, 16, s, s),
            torch.full((1,), 500.0),
            torch.randn(1, text, width),
            torch.randn(1, pooled),
        )
        comp = Component(io, Transformer(model, null), example)
        feeds = {t.name: x.numpy() for t, x in zip(io.inputs, example)}
        ref = torch_outputs(comp, feeds)["sample"]
        with tempfile.TemporaryDirectory() as tmp:
            plain = Path(tmp) / "plain.onnx"
            export_onnx(comp, plain, None)
            opt = optimize_model(str(plain), model_type="mmdit", num_heads=0, hidden_size=0, opt_level=0)
            fused = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
            fused_path = Path(tmp) / "fused.onnx"
            opt.save_model_to_file(str(fused_path), use_external_data_format=True)
            times, cos = [], []
            for path in (plain, fused_path):
                sess = _session(path)
                out = sess.run(["sample"], feeds)[0]
                cos.append(float(np.dot(out.ravel(), ref.ravel()) / np.linalg.norm(out) / np.linalg.norm(ref)))
                times.append(median_seconds(lambda sess=sess, f=feeds: sess.run(["sample"], f), a.repeats) * 1e3)
                del sess
        print(
            f"| {label} | {fused} | {times[0]:.0f} | {times[1]:.0f} | {times[0] / times[1]:.2f}x "
            f"| {cos[0]:.6f} / {cos[1]:.6f} |"
        )


if __name__ == "__main__":
    main()
