"""Crop calibration: crops that cover every latent position, the memory rule that picks their
size, and an OpenVINO model calibrated on crops carried to full size (quantize/spatial.py,
quantize/openvino_spatial.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from fewstep.quantize.spatial import SMALLEST_CROP, auto_crop, crop_items


def test_crops_cover_every_position_and_keep_the_other_inputs():
    x = np.arange(2 * 3 * 10 * 10, dtype=np.float32).reshape(2, 3, 10, 10)
    items = [{"latents": x, "other": np.ones(1)}]
    crops = crop_items(items, "latents", 4)
    assert len(crops) == 9  # rows and columns at 0, 4 and 6 (the last aligned to the far edge)
    seen = set()
    for c in crops:
        assert c["latents"].shape == (2, 3, 4, 4) and c["latents"].flags.c_contiguous
        assert c["other"] is items[0]["other"]
        seen |= set(c["latents"].ravel().tolist())
    assert seen == set(x.ravel().tolist())
    assert len(crop_items(items, "latents", 5)) == 4  # divides: no overlap
    with pytest.raises(ValueError, match="larger than the 10x10"):
        crop_items(items, "latents", 12)


def test_auto_crop_halves_the_side_until_the_estimate_fits():
    gb = 10**9
    assert auto_crop(128, 10 * gb, 64 * gb) is None  # fits at full size
    assert auto_crop(128, 10 * gb, None) is None  # memory unknown: full size, as before
    # SD3.5's VAE at 1024 px: 51.9 GB estimated, 23 GB available -> 64 (a quarter of the area)
    assert auto_crop(128, int(51.9 * gb), 23 * gb) == 64
    assert auto_crop(128, int(51.9 * gb), 5 * gb) == 32
    with pytest.raises(MemoryError, match=f"{SMALLEST_CROP}x{SMALLEST_CROP} crops"):
        auto_crop(16, 100 * gb, gb)


@pytest.fixture(scope="module")
def vae_exports(tmp_path_factory, tiny_family):
    """The tiny family's VAE decoder (32x32 latents) exported at full size and at 16x16."""
    from fewstep.compile.export import export_onnx
    from fewstep.compile.spatial import crop_component
    from fewstep.components import pipeline_components
    from fewstep.zoo.builder import build_pipeline

    torch.manual_seed(0)
    pipe = build_pipeline(replace(tiny_family, resolution=128))
    comp = pipeline_components(pipe, batch=1)["vae_decoder"]
    root = tmp_path_factory.mktemp("vae-crop")
    io = export_onnx(comp, root / "full.onnx", static_batch=1)
    export_onnx(crop_component(comp, 16), root / "crop.onnx", static_batch=1)
    export_onnx(comp, root / "dynamic.onnx")  # dynamic batch
    rng = np.random.default_rng(0)
    channels = comp.io.inputs[0].shape[1]
    latents = [rng.standard_normal((1, channels, 32, 32)).astype(np.float32) for _ in range(6)]
    with torch.no_grad():
        ref = [comp.module(torch.from_numpy(x)).numpy() for x in latents]
    return root, io, latents, ref


def _run(xml, latents):
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return [compiled({0: x})[0] for x in latents]


def test_crop_export_carried_to_full_size_is_the_full_export(vae_exports):
    from fewstep.quantize.openvino_spatial import statistics_bytes, to_full_size

    root, _, latents, _ = vae_exports
    carried = to_full_size(root / "crop.onnx", root / "full.onnx", root / "plain", "vae_decoder")
    for a, b in zip(_run(carried, latents[:2]), _run(root / "full.onnx", latents[:2])):
        assert a.shape == (1, 3, 128, 128)
        np.testing.assert_array_equal(a, b)
    # the statistics estimate scales with the area (the attention's scores, with its square)
    full = statistics_bytes(root / "full.onnx")
    assert statistics_bytes(root / "crop.onnx") < full / 3.5
    # a dynamic batch counts as one row, as the calibration feeds it
    assert statistics_bytes(root / "dynamic.onnx") == pytest.approx(full, rel=0.05)


def test_int8_calibrated_on_crops_matches_full_size_calibration(vae_exports):
    """NNCF's PTQ on 16x16 crops of 4 latents, carried to 32x32, against the same PTQ on the full
    latents: both against torch on two held-out latents."""
    from fewstep.gates.metrics import cosine
    from fewstep.quantize.config import Int8Config
    from fewstep.quantize.openvino_spatial import to_full_size
    from fewstep.quantize.registry import quantize_model

    root, io, latents, ref = vae_exports
    items = [{"latents": x} for x in latents[:4]]
    scheme = Int8Config(components=("vae_decoder",))
    full = quantize_model("openvino", root / "full.onnx", io, scheme, items, root / "q-full")
    small = quantize_model("openvino", root / "crop.onnx", io, scheme, crop_items(items, "latents", 16), root / "q")
    carried = to_full_size(small, root / "full.onnx", root / "q-carried", "vae_decoder.int8")
    import openvino as ov

    kinds = {op.get_type_name() for op in ov.Core().read_model(str(carried)).get_ops()}
    assert "FakeQuantize" in kinds
    held_out = latents[4:]
    full_cos = [cosine(o, r) for o, r in zip(_run(full, held_out), ref[4:])]
    crop_cos = [cosine(o, r) for o, r in zip(_run(carried, held_out), ref[4:])]
    assert min(crop_cos) >= 0.999, crop_cos
    assert np.mean(full_cos) - np.mean(crop_cos) < 5e-4, (full_cos, crop_cos)


def test_graphs_that_do_not_line_up_are_refused(vae_exports, tmp_path):
    import onnx

    from fewstep.quantize.openvino_spatial import to_full_size

    root, *_ = vae_exports
    other = onnx.load(str(root / "full.onnx"))
    other.graph.input[0].name = "renamed"
    for node in other.graph.node:
        node.input[:] = ["renamed" if i == "latents" else i for i in node.input]
    onnx.save(other, str(tmp_path / "other.onnx"))
    with pytest.raises(ValueError, match="'latents' is not an input of"):
        to_full_size(root / "crop.onnx", tmp_path / "other.onnx", tmp_path, "vae_decoder")
