import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
)
from transformers import CLIPTextModelWithProjection, T5EncoderModel

from fewstep.sd3_pipeline import encode_prompts, load_pipeline


def _gen(pipe, steps=2):
    g = torch.Generator().manual_seed(0)
    return pipe(
        "a red circle",
        num_inference_steps=steps,
        height=32,
        width=32,
        max_sequence_length=16,
        guidance_scale=2.0,
        generator=g,
        output_type="np",
    ).images


def test_pipeline_uses_the_sd35_classes(tiny_pipeline_dir):
    pipe = StableDiffusion3Pipeline.from_pretrained(str(tiny_pipeline_dir))
    assert isinstance(pipe.transformer, SD3Transformer2DModel)
    assert isinstance(pipe.vae, AutoencoderKL)
    assert isinstance(pipe.text_encoder, CLIPTextModelWithProjection)
    assert isinstance(pipe.text_encoder_2, CLIPTextModelWithProjection)
    assert isinstance(pipe.text_encoder_3, T5EncoderModel)
    assert isinstance(pipe.scheduler, FlowMatchEulerDiscreteScheduler)
    assert pipe.transformer.config.qk_norm == "rms_norm"


def test_save_load_round_trip_generates_identically(tiny_pipeline_dir, tmp_path):
    pipe = load_pipeline(tiny_pipeline_dir)
    first = _gen(pipe)
    pipe.save_pretrained(str(tmp_path / "copy"))
    again = _gen(load_pipeline(tmp_path / "copy"))
    assert first.shape == (1, 32, 32, 3)
    np.testing.assert_allclose(first, again, atol=1e-6)


def test_builder_is_deterministic(tiny_family):
    from fewstep.zoo.builder import build_pipeline

    a, b = build_pipeline(tiny_family), build_pipeline(tiny_family)
    for (ka, va), (_, vb) in zip(a.transformer.state_dict().items(), b.transformer.state_dict().items()):
        assert torch.equal(va, vb), ka


def test_encode_prompts_matches_diffusers(tiny_pipeline_dir):
    pipe = load_pipeline(tiny_pipeline_dir)
    caps = ["a red circle", "two blue squares above a star"]
    ours, pooled = encode_prompts(pipe, caps)
    ref, _, ref_pooled, _ = pipe.encode_prompt(
        caps, None, None, do_classifier_free_guidance=False, max_sequence_length=16
    )
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(pooled, ref_pooled)


def test_drop_masks_give_empty_prompt_and_zero_t5(tiny_pipeline_dir):
    pipe = load_pipeline(tiny_pipeline_dir)
    embeds, pooled = encode_prompts(pipe, ["a red circle"], torch.tensor([[True, True, True]]))
    empty, empty_pooled = encode_prompts(pipe, [""])
    torch.testing.assert_close(embeds[:, :16], empty[:, :16])
    torch.testing.assert_close(pooled, empty_pooled)
    assert torch.count_nonzero(embeds[:, 16:]) == 0


def test_t5_free_pipeline_runs_with_zero_filled_slot(tiny_pipeline_dir):
    pipe = load_pipeline(tiny_pipeline_dir, drop_t5=True)
    assert pipe.text_encoder_3 is None
    embeds, _ = encode_prompts(pipe, ["a red circle"])
    assert torch.count_nonzero(embeds[:, 16:]) == 0
    assert np.isfinite(_gen(pipe)).all()


def test_cached_prompt_encoding_matches_and_encodes_each_caption_once(tiny_pipeline_dir, monkeypatch):
    import fewstep.sd3_pipeline as pipelines

    pipe = load_pipeline(tiny_pipeline_dir)
    caps = ["a red circle", "two blue squares above a star", "a red circle"]
    drop = torch.tensor([[False, True, False], [False, False, True], [True, False, False]])
    ref = encode_prompts(pipe, caps, drop)
    seen: list[list[str]] = []
    real = pipelines._encode_all
    monkeypatch.setattr(pipelines, "_encode_all", lambda p, c: seen.append(list(c)) or real(p, c))
    cache: dict = {}
    first = encode_prompts(pipe, caps, drop, cache=cache)
    again = encode_prompts(pipe, caps, drop, cache=cache)
    for got in (first, again):
        for a, b in zip(got, ref):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert sorted(cache) == ["", "a red circle", "two blue squares above a star"]
    assert seen == [["a red circle", "two blue squares above a star"], [""]]  # nothing encoded twice
