"""One SD3.5-Medium joint attention in diffusers' head-major layout and fewstep's token-major one,
as OpenVINO's CPU plugin compiles them: standalone transposes and copies, and interleaved speed.

    python benchmarks/ov_attention_layout.py [--image-tokens 1024] [--text-tokens 333] [--int8]
        [--hint bf16] [--rounds 30] [--layouts tokens keys tokens-matmul] [--json]

diffusers' `JointAttnProcessor2_0` transposes q, k and v of both streams to (batch, heads, tokens,
dim) before their RMS norms and the image + text concatenation; fewstep's `tokens` layout
(fewstep/joint_attention.py) keeps them token-major until the attention's inputs. This builds the
real module (diffusers' `Attention`: 1536 wide, 24 heads of 64, RMS q/k norms, random weights),
exports it through torch.onnx (opset 17, as fewstep's export does), optionally applies NNCF's
static int8 PTQ (`--int8`: 4 random calibration samples, transformer preset: the int8 MHA
subgraph), compiles both at `--hint`, and prints for each layout: the executed Transpose and
Concat nodes (count, ms in one profiled run, by kernel), the cosine against torch, then the
median of the per-round B/A ratios over `--rounds` interleaved rounds (order reversed every other
round) and in how many rounds token-major was faster. `tokens-matmul` writes the attention out in
the MHA pattern OpenVINO's snippets tokenizer documents (k transposed once, [0, 2, 3, 1]): it shows
which transposes the plugin leaves outside its fused attention whatever the export does.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from fewstep.joint_attention import JointAttention

WIDTH, HEADS, DIM = 1536, 24, 64


def attention_module():
    from diffusers.models.attention_processor import Attention, JointAttnProcessor2_0

    torch.manual_seed(0)
    attn = Attention(
        query_dim=WIDTH, cross_attention_dim=None, added_kv_proj_dim=WIDTH, dim_head=DIM, heads=HEADS,
        out_dim=WIDTH, context_pre_only=False, bias=True, processor=JointAttnProcessor2_0(), qk_norm="rms_norm",
        eps=1e-6,
    )  # fmt: skip
    for name, p in attn.named_parameters():
        if "norm" in name:  # RMS scales away from 1, so a layout that skipped them would show
            p.data = 1 + 0.1 * torch.randn_like(p)
    return attn.eval()


class MatMulAttention(JointAttention):
    """`tokens`, with SDPA written out in the pattern OpenVINO's MHA tokenizer documents (snippets'
    TokenizeMHASnippets): q and v transposed [0, 2, 1, 3] from token-major, k [0, 2, 3, 1] (its two
    transposes fold into one when OpenVINO reads the model), MatMul -> Softmax -> MatMul. The same
    arithmetic up to rounding (SDPA's scale on q)."""

    def __init__(self):
        super().__init__("tokens")

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, *args, **kwargs):
        b, n_image = hidden_states.shape[0], hidden_states.shape[1]
        q, k, v = self._split(attn, hidden_states, encoder_hidden_states)  # token-major, transposed [0, 2, 1, 3]
        scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # k's two transposes fold into [0, 2, 3, 1]
        out = (torch.softmax(scores, -1) @ v).permute(0, 2, 1, 3).reshape(b, -1, attn.inner_dim)
        image, text = out[:, :n_image], attn.to_add_out(out[:, n_image:])
        return attn.to_out[1](attn.to_out[0](image)), text


class Joint(torch.nn.Module):
    """(image, text) hidden states -> the attention's (image, text) outputs, in one layout."""

    def __init__(self, attn, layout: str):
        super().__init__()
        self.attn, self.layout = attn, layout

    def forward(self, h, e):
        self.attn.processor = MatMulAttention() if self.layout == "tokens-matmul" else JointAttention(self.layout)
        return self.attn(hidden_states=h, encoder_hidden_states=e)


def runtime_ops(compiled, request) -> dict[str, list[float]]:
    """ms of the executed Transpose / Concat nodes, by '<type> (<kernel>)'."""
    kinds = {
        op.get_friendly_name(): op.get_rt_info()["layerType"].astype(str)
        for op in compiled.get_runtime_model().get_ordered_ops()
    }
    out: dict[str, list[float]] = defaultdict(list)
    for p in request.get_profiling_info():
        if kinds.get(p.node_name) in ("Transpose", "Concatenation", "Concat"):
            out[f"{kinds[p.node_name]} ({p.exec_type})"].append(p.real_time.total_seconds() * 1e3)
    return dict(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-tokens", type=int, default=1024)
    ap.add_argument("--text-tokens", type=int, default=333)
    ap.add_argument("--int8", action="store_true")
    ap.add_argument("--hint", default="bf16", choices=["f32", "bf16"])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument(
        "--layouts", nargs="+", default=["tokens"], choices=["tokens", "keys", "tokens-matmul"],
        help="compared with heads: fewstep.joint_attention's layouts, or tokens-matmul (MatMulAttention)",
    )  # fmt: skip
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    import openvino as ov

    from fewstep.cpu.isa import detect
    from fewstep.gates.metrics import cosine

    attn = attention_module()
    g = torch.Generator().manual_seed(1)
    h, e = torch.randn(1, a.image_tokens, WIDTH, generator=g), torch.randn(1, a.text_tokens, WIDTH, generator=g)
    feeds = {"h": h.numpy(), "e": e.numpy()}
    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": a.hint, "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True}
    requests, report = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for layout in ("heads", *a.layouts):
            module = Joint(attn, layout).eval()
            with torch.no_grad():
                ref = module(h, e)[0].numpy()
                path = Path(tmp) / f"{layout}.onnx"
                torch.onnx.export(module, (h, e), str(path), input_names=["h", "e"], output_names=["image", "text"],
                                  opset_version=17, dynamo=False)  # fmt: skip
            model = core.read_model(str(path))
            if a.int8:
                import nncf

                nncf.set_log_level(logging.WARNING)
                rng = np.random.default_rng(2)
                items = [
                    {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in feeds.items()} for _ in range(4)
                ]
                model = nncf.quantize(model, nncf.Dataset(items), subset_size=4, model_type=nncf.ModelType.TRANSFORMER)
            compiled = core.compile_model(model, "CPU", config)
            request = compiled.create_infer_request()
            request.infer(feeds)
            request.infer(feeds)
            ops = runtime_ops(compiled, request)
            cos = cosine(request.get_output_tensor(0).data.copy(), ref)
            requests[layout] = request
            report[layout] = {"ops": {k: [len(v), sum(v)] for k, v in ops.items()}, "cosine_vs_torch": cos}
    times: dict[str, list[float]] = {k: [] for k in requests}
    for r in range(a.rounds):
        for layout, request in list(requests.items())[:: 1 if r % 2 == 0 else -1]:
            start = time.perf_counter()
            request.infer(feeds)
            times[layout].append(time.perf_counter() - start)
    isa = detect()
    kind = "static int8 (NNCF)" if a.int8 else "float"
    print(f"ISA: {isa.name if isa else 'unknown'}; {kind} at {a.hint}; {a.image_tokens} + {a.text_tokens} tokens")
    print("| layout | Transpose / Concat nodes executed: count, ms | cosine vs torch | median ms |")
    print("| --- | --- | --- | --- |")
    for layout, rep in report.items():
        ops = "; ".join(f"{k}: {n}, {ms:.2f}" for k, (n, ms) in sorted(rep["ops"].items())) or "none"
        print(f"| {layout} | {ops} | {rep['cosine_vs_torch']:.6f} | {statistics.median(times[layout]) * 1e3:.1f} |")
    for layout in a.layouts:
        ratios = [t / b for t, b in zip(times[layout], times["heads"])]
        wins = sum(r < 1 for r in ratios)
        report[layout] |= {"median_ratio": statistics.median(ratios), "wins": wins}
        print(f"{layout} / heads: median ratio {statistics.median(ratios):.3f}, faster in {wins} of {a.rounds} rounds")
    if a.json:
        out = {"isa": isa.name if isa else None, "int8": a.int8, "hint": a.hint, "layouts": report, "rounds": a.rounds}
        print(json.dumps(out))


if __name__ == "__main__":
    main()
