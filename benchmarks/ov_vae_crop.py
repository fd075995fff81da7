"""SD3.5's VAE decoder in static int8 at a resolution whose calibration statistics do not fit in
memory, calibrated on crops (`quantize/spatial.py`), against its fp32-weights decoder.

    python benchmarks/ov_vae_crop.py [--resolution 1024] [--crop auto] [--calibration 8] \
        [--latents 2] [--rounds 3] [--work runs/vae-crop] [--full-calibration]

The decoder is SD3.5-Medium's at its real configuration with random weights (`zoo/sd35_medium.py`,
seed 0). The build's own steps, on their own: the full-size export and its statistics estimate,
the crop the build's `calibration_crop: auto` picks from the available memory (or `--crop N`),
the crop-size export, NNCF's int8 PTQ on every crop of `--calibration` random latents (seed 1),
the quantizers carried to full size, and both decoders through the OpenVINO target's `build`
(`--full-calibration`: a third, the same PTQ on the full-size latents, where that fits in memory).
Then `ov_vae_precision.compare`: each at bf16 and f32 against torch on `--latents` held-out
latents (seed 0) and against its own f32 run, decode seconds interleaved for `--rounds` rounds.
Prints the quantize seconds and this process's peak RSS (the torch VAE included).
"""

from __future__ import annotations

import argparse
import gc
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from ov_vae_precision import compare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=1024)
    ap.add_argument("--crop", default="auto", help="latent pixels a side, or auto")
    ap.add_argument("--calibration", type=int, default=8, help="calibration latents (each cut into crops)")
    ap.add_argument("--latents", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("runs/vae-crop"))
    ap.add_argument(
        "--full-calibration", action="store_true", help="also calibrate at full size (where it fits), as a row"
    )
    a = ap.parse_args()
    import torch
    from diffusers import AutoencoderKL

    from fewstep.compile.export import export_onnx
    from fewstep.compile.spatial import crop_component
    from fewstep.component_modules import VaeDecoder
    from fewstep.components import Component
    from fewstep.quantize.config import Int8Config
    from fewstep.quantize.openvino_spatial import statistics_bytes, to_full_size
    from fewstep.quantize.registry import quantize_model
    from fewstep.quantize.spatial import auto_crop, crop_items
    from fewstep.runtime.memory import available_memory_bytes, peak_rss_mb
    from fewstep.targets.base import ComponentIO, TensorSpec
    from fewstep.targets.openvino_cpu import OpenVINOCPU
    from fewstep.zoo.sd35_medium import SD35Config

    torch.manual_seed(0)
    cfg = SD35Config()
    vae = AutoencoderKL(**cfg.vae).eval()
    c, side = cfg.vae["latent_channels"], a.resolution // 8
    io = ComponentIO("vae_decoder", (TensorSpec("latents", ("batch", c, side, side)),), ("image",))
    comp = Component(io, VaeDecoder(vae), (torch.randn(1, c, side, side),))
    work = a.work / str(a.resolution)
    work.mkdir(parents=True, exist_ok=True)
    full = work / "full" / "vae_decoder.onnx"
    if not full.exists():
        full.parent.mkdir(exist_ok=True)
        export_onnx(comp, full, static_batch=1)
    need, available = statistics_bytes(full), available_memory_bytes()
    auto = auto_crop(side, need, available)
    crop = auto if a.crop == "auto" else int(a.crop)
    print(
        f"latent {side}x{side}: statistics estimate {need / 1e9:.1f} GB, available {available / 1e9:.1f} GB, "
        f"auto crop {auto}, using {crop}"
    )
    if crop is None:
        raise SystemExit("the full size fits: nothing to crop (pass --crop N to crop anyway)")
    small = work / f"crop{crop}" / "vae_decoder.onnx"
    if not small.exists():
        small.parent.mkdir(exist_ok=True)
        export_onnx(crop_component(comp, crop), small, static_batch=1)
    rng = np.random.default_rng(1)
    items = [{"latents": rng.standard_normal((1, c, side, side)).astype(np.float32)} for _ in range(a.calibration)]
    crops = crop_items(items, "latents", crop)
    static = replace(io, static_sizes={"batch": 1})
    target = OpenVINOCPU()
    int8 = work / f"int8-crop{crop}" / "vae_decoder.xml"
    if not int8.exists():
        start = time.perf_counter()
        quantized = quantize_model("openvino", small, static, Int8Config(), crops, work / "quantize")
        carried = to_full_size(quantized, full, work / "quantize", "vae_decoder.int8-full")
        seconds = time.perf_counter() - start
        print(f"quantized on {len(crops)} crops in {seconds:.0f} s; peak RSS {peak_rss_mb():.0f} MB")
        target.build(carried, static, "int8", int8.parent)
    irs = {f"int8, calibrated on {crop}x{crop} crops": int8}
    if a.full_calibration:
        whole = work / "int8-full" / "vae_decoder.xml"
        if not whole.exists():
            start = time.perf_counter()
            quantized = quantize_model("openvino", full, static, Int8Config(), items, work / "quantize-full")
            seconds = time.perf_counter() - start
            print(f"quantized at full size on {len(items)} latents in {seconds:.0f} s; peak RSS {peak_rss_mb():.0f} MB")
            target.build(quantized, static, "int8", whole.parent)
        irs[f"int8, calibrated at {side}x{side}"] = whole
    fp32 = work / "fp32" / "vae_decoder.xml"
    if not fp32.exists():
        target.build(full, static, "fp32", fp32.parent)
    irs["fp32 weights"] = fp32
    gc.collect()
    rng = np.random.default_rng(0)
    latents = [rng.standard_normal((1, c, side, side)).astype(np.float32) for _ in range(a.latents)]
    compare(comp.module, irs, latents, a.rounds)
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
