"""Standard metrics for models without a shipped evaluator: FID on a local ONNX feature network,
CLIP score with a local CLIP directory, LPIPS from a local ONNX network. The networks are
random-weight stand-ins built offline here; the plumbing and the numerics are what is checked
(real InceptionV3 / CLIP / LPIPS weights are the user's)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime")
pytest.importorskip("torchmetrics")

from fewstep.families import StandardMetrics, evaluation_with  # noqa: E402
from fewstep.families.frechet import frechet_distance  # noqa: E402
from fewstep.families.sd3 import SD3Family  # noqa: E402
from fewstep.families.standard import FeatureNetwork, LpipsNetwork  # noqa: E402


class TinyFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())

    def forward(self, x):
        return self.net(x).mean((2, 3))


class TinyLpips(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = TinyFeatures()

    def forward(self, a, b):
        return (self.features(a) - self.features(b)).abs().mean(1)


def export(module: nn.Module, inputs: tuple, path: Path, names: list[str]) -> Path:
    axes = {n: {0: "batch"} for n in names}
    torch.onnx.export(module.eval(), inputs, str(path), input_names=names, dynamic_axes=axes, dynamo=False)
    return path


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    root = tmp_path_factory.mktemp("metrics")
    x = torch.rand(2, 3, 32, 32)
    fid = export(TinyFeatures(), (x,), root / "features.onnx", ["images"])
    lpips = export(TinyLpips(), (x, x), root / "lpips.onnx", ["a", "b"])

    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from fewstep.zoo.tokenizers import build_clip_tokenizer

    tok = build_clip_tokenizer(16)
    cfg = CLIPConfig(
        text_config=dict(
            vocab_size=tok.vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=16,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    torch.manual_seed(0)
    clip = root / "clip"
    CLIPModel(cfg).save_pretrained(str(clip))
    CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=32), tokenizer=tok
    ).save_pretrained(str(clip))

    ref = root / "reference"
    ref.mkdir()
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        img = np.clip(rng.normal(0.5, 0.2, (32, 32, 3)) + np.linspace(0, 0.3, 32)[None, :, None], 0, 1)
        Image.fromarray((img * 255).astype(np.uint8)).save(ref / f"{i}.png")
        rows.append({"file_name": f"{i}.png", "text": ["a red circle", "two blue squares"][i % 2]})
    (ref / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return {"fid": fid, "lpips": lpips, "clip": clip, "reference": ref}


def test_fid_on_the_feature_network_matches_torchmetrics_frechet(networks):
    from torchmetrics.image.fid import _compute_fid

    feats = FeatureNetwork(networks["fid"])
    rng = np.random.default_rng(1)
    a = rng.random((40, 32, 32, 3)).astype(np.float32)
    b = np.clip(a * 0.7 + 0.2, 0, 1).astype(np.float32)
    fa, fb = feats(a), feats(b)
    assert fa.shape == (40, 16)
    # the features equal the torch module's own on the same input
    with torch.no_grad():
        ref = TinyFeatures()(torch.from_numpy(a.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(fa, ref, rtol=1e-4, atol=1e-5)
    ours = frechet_distance(fa, fb)
    mu = [torch.tensor(f.mean(0)) for f in (fa, fb)]
    cov = [torch.tensor(np.cov(f, rowvar=False)) for f in (fa, fb)]
    theirs = float(_compute_fid(mu[0], cov[0], mu[1], cov[1]))
    assert ours == pytest.approx(theirs, rel=1e-4, abs=1e-8)
    assert frechet_distance(fa, fa) == pytest.approx(0.0, abs=1e-6)


def test_standard_evaluation_scores_fid_and_clip_score(networks):
    metrics = StandardMetrics(
        reference=networks["reference"], fid_network=networks["fid"], clip=networks["clip"], resolution=32
    )
    evaluation = evaluation_with(SD3Family(), metrics)
    prompts, specs = evaluation.held_out(10)
    assert prompts == ["a red circle", "two blue squares"] * 5 and specs == prompts
    from fewstep.families.sd3 import ImageFolderSource

    real = ImageFolderSource(networks["reference"], 32, split="all").images
    noise = np.random.default_rng(2).random((24, 32, 32, 3)).astype(np.float32)
    close, far = evaluation.score(real, prompts[:2] * 12), evaluation.score(noise, prompts[:2] * 12)
    assert close["fid"] == pytest.approx(0.0, abs=1e-6)  # the reference against itself
    assert far["fid"] > 10 * max(close["fid_real"], 1e-6) and far["fid"] > 0
    # CLIP score recomputed from the towers and projections by hand (torchmetrics 1.9's CLIPScore
    # fails on transformers 5's output objects), and alignment = score / 100
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(str(networks["clip"])).eval()
    proc = CLIPProcessor.from_pretrained(str(networks["clip"]))
    pixels = list(np.rint(noise * 255).astype(np.uint8))
    inputs = proc(text=prompts[:2] * 12, images=pixels, return_tensors="pt", padding=True)
    with torch.no_grad():
        img = model.visual_projection(model.vision_model(pixel_values=inputs.pixel_values).pooler_output)
        txt = model.text_projection(
            model.text_model(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask).pooler_output
        )
    cos = torch.nn.functional.cosine_similarity(img, txt, dim=-1)
    assert far["clip_score"] == pytest.approx(float((100 * cos).clamp(min=0).mean()), rel=1e-4, abs=1e-4)
    assert far["alignment"] == pytest.approx(far["clip_score"] / 100)


def test_lpips_network_distance_and_gate(networks):
    from fewstep.gates.check import image_gates
    from fewstep.gates.config import GateConfig

    lp = LpipsNetwork(networks["lpips"])
    rng = np.random.default_rng(3)
    a = rng.random((4, 32, 32, 3)).astype(np.float32)
    assert lp(a, a) == pytest.approx(np.zeros(4), abs=1e-7)
    near, far = lp(a, np.clip(a + 0.01, 0, 1)).mean(), lp(a, 1 - a).mean()
    assert 0 < near < far
    cfg = GateConfig(image={"lpips_network": str(networks["lpips"]), "lpips_max": float(near) * 2})
    names = {r.gate: r.passed for r in image_gates(np.clip(a + 0.01, 0, 1), a, cfg)}
    assert names["image/lpips"] is True
    names = {r.gate: r.passed for r in image_gates(1 - a, a, cfg)}
    assert names["image/lpips"] is False


def test_standard_metrics_refuse_missing_paths_by_name(tmp_path, networks):
    with pytest.raises(ValueError, match="reference: .* has no metadata.jsonl"):
        StandardMetrics(reference=tmp_path)
    with pytest.raises(ValueError, match="fid_network: .*nope.onnx does not exist"):
        StandardMetrics(reference=networks["reference"], fid_network=tmp_path / "nope.onnx")
    with pytest.raises(ValueError, match="clip: .* not a transformers CLIP directory"):
        StandardMetrics(reference=networks["reference"], clip=tmp_path)
    with pytest.raises(ValueError, match="lpips_network"):
        from fewstep.gates.config import GateConfig

        GateConfig(image={"lpips_network": str(tmp_path / "x.onnx")})


def test_evaluator_less_family_is_refused_without_metrics_and_scored_with_them(tmp_path, networks):
    from fewstep.evaluation import evaluation_of

    with pytest.raises(ValueError, match="has no evaluator.*--metrics"):
        evaluation_of(tmp_path, family_name="sd3")
    metrics = StandardMetrics(reference=networks["reference"], fid_network=networks["fid"], resolution=32)
    assert evaluation_of(tmp_path, family_name="sd3", metrics=metrics).held_out(1)[0] == ["a red circle"]


def test_eval_cli_refuses_an_evaluator_less_pipeline_and_scores_it_with_metrics(networks, tmp_path):
    """An SD3 pipeline with its own tokenizers is not the shapes family: `fewstep eval` says so by
    name (exit 2) and scores it when given standard metrics."""
    from typer.testing import CliRunner

    from fewstep.cli import app
    from fewstep.zoo.builder import ShapesFamilyConfig, build_pipeline

    tiny = dict(layers=1, heads=2, head_dim=16, vae_channels=(16, 16, 16), clip_dims=(16, 32), t5_dim=64)
    build_pipeline(ShapesFamilyConfig(**tiny, dual_attention_layers=(0,), words=("corgi",))).save_pretrained(
        str(tmp_path / "sd3")
    )
    runner = CliRunner()
    args = ["eval", str(tmp_path / "sd3"), "--steps", "2", "--num-images", "8", "--grid", str(tmp_path / "g.png")]
    refused = runner.invoke(app, args)
    assert (
        refused.exit_code == 2 and "'sd3' family has no evaluator" in refused.output and "--metrics" in refused.output
    )
    lines = [f"reference: {networks['reference']}", f"fid_network: {networks['fid']}", f"clip: {networks['clip']}"]
    (tmp_path / "m.yaml").write_text("\n".join([*lines, "resolution: 32"]) + "\n")
    scored = runner.invoke(app, [*args, "--metrics", str(tmp_path / "m.yaml"), "--json"])
    assert scored.exit_code == 0, scored.output
    result = json.loads(scored.output[scored.output.index("{") :])
    assert result["fid"] > 0 and 0 <= result["clip_score"] <= 100 and result["metrics"] == "standard"
    bad = runner.invoke(app, [*args, "--metrics", str(networks["reference"] / "metadata.jsonl")])
    assert bad.exit_code == 2
