"""optimum on a fewstep bundle: a student (`zoo:shapes-flash` by default) compiled with the
ecosystem layout and loaded by optimum's own pipeline class in its own virtual environment
(created on first use, as benchmarks/sd35_medium.py does), called the stock way
(`num_inference_steps=4`, `guidance_scale=1.0`, torch noise as `latents=`), against fewstep's
runtime on the same noise:

- `--runtime openvino` (default): openvino-cpu with `openvino_layout: true`, optimum-intel's
  `OVStableDiffusion3Pipeline` (transformers < 5.6); rows: its default inference precision (bf16
  where the CPU has it) and f32;
- `--runtime onnx`: onnxruntime-cpu with `onnx_layout: true`, optimum-onnx's
  `ORTStableDiffusion3Pipeline` (transformers < 4.58).

    python benchmarks/optimum_client.py [--runtime openvino|onnx] [--model zoo:shapes-flash] [--precision fp32]
                                      [--images 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PINS = ["torch==2.13.0", "optimum-intel[openvino]==2.2.*", "transformers<5.6", "huggingface-hub<1.22", "diffusers",
        "sentencepiece", "protobuf"]  # fmt: skip
ONNX_PINS = ["torch==2.13.0", "optimum-onnx[onnxruntime]==0.1.*", "transformers<4.58", "diffusers", "sentencepiece",
             "protobuf"]  # fmt: skip
LOADERS = {
    "openvino": """from optimum.intel import OVStableDiffusion3Pipeline
pipe = OVStableDiffusion3Pipeline.from_pretrained(bundle, compile=True,
    ov_config={"INFERENCE_PRECISION_HINT": hint} if hint != "default" else None)""",
    "onnx": """from optimum.onnxruntime import ORTStableDiffusion3Pipeline
pipe = ORTStableDiffusion3Pipeline.from_pretrained(bundle, provider="CPUExecutionProvider")""",
}
CLIENT = """
import json, sys, numpy as np, torch
bundle, prompts, hint, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
LOADER
cfg = json.load(open(bundle + "/transformer/config.json"))
size = cfg["sample_size"] * 2 ** (len(json.load(open(bundle + "/vae_decoder/config.json"))["block_out_channels"]) - 1)
t5 = json.load(open(bundle + "/manifest.json"))["pipeline"]["tokenizers"]["text_encoder_3"]["max_length"]
images = []
for seed, prompt in enumerate(prompts):
    shape = (1, cfg["in_channels"], cfg["sample_size"], cfg["sample_size"])
    lat = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    images.append(pipe(prompt, num_inference_steps=4, guidance_scale=1.0, height=size, width=size,
                       max_sequence_length=t5, latents=lat, output_type="np").images[0])
np.save(out, np.stack(images))
print(json.dumps([float(s) for s in pipe.scheduler.sigmas]))
"""


def optimum_python(venv: Path, pins: list[str] = PINS) -> Path:
    """The venv's python, created with `pins` in one pip call (torch pinned with the rest, so pip
    never swaps in a CUDA build) on first use."""
    py = venv / "bin" / "python"
    if not (venv / ".ready").exists():
        print(f"creating optimum environment in {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *pins], check=True)
        subprocess.run([str(py), "-m", "pip", "uninstall", "-q", "-y", "torchvision"], check=False)  # FACTS.md
        (venv / ".ready").write_text("ok")
    return py


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", choices=["openvino", "onnx"], default="openvino")
    ap.add_argument("--model", default="zoo:shapes-flash", help="a 4-step student: zoo name or directory")
    ap.add_argument("--precision", default="fp32", help="the bundle's precision (e.g. int8-weights)")
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--venv", type=Path, default=None, help="default: runs/optimum-venv or runs/optimum-onnx-venv")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    import torch

    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig
    from fewstep.families import family_for
    from fewstep.runtime.bundle import Bundle
    from fewstep.sd3_pipeline import resolve_model

    onnx = a.runtime == "onnx"
    venv = a.venv or ROOT / "runs" / ("optimum-onnx-venv" if onnx else "optimum-venv")
    py = optimum_python(venv, ONNX_PINS if onnx else PINS)
    model = resolve_model(a.model)
    prompts, _ = family_for(model).evaluation().held_out(a.images)
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        layout = {"onnx_layout": True} if onnx else {"openvino_layout": True}
        cfg = CompileConfig(target="onnxruntime-cpu" if onnx else "openvino-cpu", precision=a.precision,
                            gates={"enabled": False}, measure=False, **layout)  # fmt: skip
        bundle, _ = compile_bundle(model, cfg, Path(tmp) / "bundle")
        b = Bundle.open(bundle)
        ours = np.concatenate([
            b.generate([p], latents=torch.randn((1, *b.pipeline.latent_shape),
                       generator=torch.Generator().manual_seed(i)).numpy())
            for i, p in enumerate(prompts)
        ])  # fmt: skip
        client = CLIENT.replace("LOADER", LOADERS[a.runtime])
        for hint in ("default",) if onnx else ("default", "f32"):
            out = Path(tmp) / f"optimum-{hint}.npy"
            res = subprocess.run([str(py), "-c", client, str(bundle), json.dumps(prompts), hint, str(out)],
                                 capture_output=True, text=True)  # fmt: skip
            if res.returncode:
                raise SystemExit(f"optimum-intel failed ({hint}):\n{res.stderr[-2000:]}")
            theirs = np.load(out)
            values = [psnr(x, y) for x, y in zip(theirs, ours)]
            result[hint] = {"sigmas": json.loads(res.stdout.strip().splitlines()[-1]),
                            "mean_psnr_db": float(np.mean(values)), "min_psnr_db": float(np.min(values))}  # fmt: skip
    print(
        f"{a.model}, {cfg.target} {a.precision}, {a.images} prompts; "
        f"optimum's stock call ({a.runtime}) vs fewstep's runtime:"
    )
    for hint, r in result.items():
        print(f"  inference precision {hint:8s} sigmas {[round(s, 3) for s in r['sigmas'][:-1]]}: "
              f"mean PSNR {r['mean_psnr_db']:.2f} dB (min {r['min_psnr_db']:.2f})")  # fmt: skip
    if a.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
