"""`onnx_layout: true`: an onnxruntime bundle in the diffusers-style ONNX layout that optimum's
`ORTStableDiffusion3Pipeline` loads; its files are the bundle's components, and fewstep's runtime
reads them with the same images as a plain bundle. optimum-onnx itself runs in its own venv
(transformers < 4.58), so that check is slow (`make test-all`)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fewstep.compile.api import compile_bundle
from fewstep.compile.config import CompileConfig
from fewstep.runtime.bundle import Bundle

ROOT = Path(__file__).resolve().parents[2]


def _build(model, out, **layout):
    cfg = CompileConfig(target="onnxruntime-cpu", precision="fp32", gates={"enabled": False}, measure=False, **layout)
    return compile_bundle(model, cfg, out)[0]


def test_onnx_layout_is_the_bundle_and_fewstep_reads_it(tiny_student_dir, tmp_path):
    plain, layout = (
        _build(tiny_student_dir, tmp_path / "plain"),
        _build(tiny_student_dir, tmp_path / "l", onnx_layout=True),
    )
    assert not (layout / "components").exists() and (layout / "model_index.json").is_file()
    manifest = json.loads((layout / "manifest.json").read_text())
    assert {c["layout"] for c in manifest["components"].values()} == {"onnx"}
    import onnx

    outputs = [o.name for o in onnx.load(str(layout / "text_encoder" / "model.onnx")).graph.output]
    layers = json.loads((layout / "text_encoder" / "config.json").read_text())["num_hidden_layers"]
    assert outputs[:2] == ["text_embeds", "last_hidden_state"] and outputs[-1] == "hidden_states"
    assert outputs[1 + layers] == f"hidden_states.{layers - 1}"  # where the SD3 pipeline reads the penultimate layer
    vae = onnx.load(str(layout / "vae_decoder" / "model.onnx")).graph
    assert [i.name for i in vae.input] == ["latent_sample"] and vae.output[0].name == "sample"
    tok = json.loads((layout / "tokenizer_3" / "tokenizer_config.json").read_text())
    assert tok["tokenizer_class"] == "T5TokenizerFast" and not isinstance(tok.get("extra_special_tokens"), list)
    prompts = ["a red circle", "two blue squares"]
    a, b = Bundle.open(plain).generate(prompts, seed=2), Bundle.open(layout).generate(prompts, seed=2)
    assert np.abs(a - b).max() < 1e-6


def test_a_bundle_has_one_layout_for_its_target(tiny_student_dir, tmp_path):
    with pytest.raises(ValueError, match="a bundle has one layout"):
        CompileConfig(target="onnxruntime-cpu", openvino_layout=True, onnx_layout=True)
    cfg = CompileConfig(target="openvino-cpu", onnx_layout=True, gates={"enabled": False}, measure=False)
    with pytest.raises(ValueError, match="onnx_layout: only for the onnxruntime-cpu / onnxruntime-cuda target"):
        compile_bundle(tiny_student_dir, cfg, tmp_path / "b")
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_optimum_onnx_samples_a_fewstep_bundle_right():
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "optimum_client.py"), "--runtime", "onnx", "--images", "2",
         "--json"],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["default"]["sigmas"][:-1] == pytest.approx([1.0, 0.9, 0.75, 0.5], abs=1e-6)
    assert result["default"]["min_psnr_db"] >= 40.0
