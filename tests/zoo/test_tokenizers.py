import subprocess
import sys

from fewstep.zoo.tokenizers import build_clip_tokenizer, build_t5_tokenizer

PROBE = (
    "from fewstep.zoo.tokenizers import build_clip_tokenizer, build_t5_tokenizer;"
    "import hashlib, json;"
    "c = build_clip_tokenizer(); t = build_t5_tokenizer();"
    "print(hashlib.sha256(json.dumps([sorted(c.get_vocab().items()), sorted(t.get_vocab().items()),"
    " c('a small red circle left of an orange star').input_ids]).encode()).hexdigest())"
)


def test_vocabulary_is_identical_across_processes():
    digests = {
        subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    }
    assert len(digests) == 1


def test_domain_words_are_single_tokens_and_unknown_words_still_encode():
    clip = build_clip_tokenizer(16)
    toks = clip.convert_ids_to_tokens(clip("two purple triangles above a star").input_ids)
    assert toks[1:-1] == ["two</w>", "purple</w>", "triangles</w>", "above</w>", "a</w>", "star</w>"]
    assert clip.unk_token_id not in clip("zebra!").input_ids[1:-1]
    t5 = build_t5_tokenizer(16)
    assert t5.convert_ids_to_tokens(t5("a red circle").input_ids) == ["▁a", "▁red", "▁circle", "</s>"]
    assert t5.unk_token_id not in t5("zebra").input_ids


def test_padding_to_model_max_length():
    clip = build_clip_tokenizer(16)
    ids = clip("a red circle", padding="max_length", max_length=16).input_ids
    assert len(ids) == 16 and ids[-1] == clip.eos_token_id


CAPTIONS = [
    "a photo of a fluffy corgi sleeping peacefully beside the fireplace in winter",
    "an illustration of a mischievous raccoon stealing blueberries at midnight",
    "a watercolor of a fluffy corgi",
]


def _imagefolder(root, captions):
    import json

    import numpy as np
    from PIL import Image

    root.mkdir()
    for i, _ in enumerate(captions):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(root / f"{i}.png")
    (root / "metadata.jsonl").write_text("\n".join(json.dumps({"file_name": f"{i}.png", "text": c})
                                                   for i, c in enumerate(captions)))  # fmt: skip
    return root


def test_caption_words_get_tokens_of_their_own_deterministically():
    from fewstep.zoo.tokenizers import caption_words

    words = caption_words(CAPTIONS)
    assert words == sorted(words) and {"corgi", "raccoon", "blueberries"} <= set(words)
    assert caption_words(CAPTIONS, limit=3) == ["a", "corgi", "of"]  # a 5, of 3, then corgi before fluffy (2 each)
    clip, clip_again = build_clip_tokenizer(77, words), build_clip_tokenizer(77, words)
    assert clip.get_vocab() == clip_again.get_vocab()
    toks = clip.convert_ids_to_tokens(clip("a fluffy corgi").input_ids)[1:-1]
    assert toks == ["a</w>", "fluffy</w>", "corgi</w>"]  # not spelled letter by letter
    plain = build_clip_tokenizer(77)
    assert len(plain("a fluffy corgi").input_ids) > len(clip("a fluffy corgi").input_ids)
    t5 = build_t5_tokenizer(77, words)
    assert t5.convert_ids_to_tokens(t5("mischievous raccoon").input_ids) == ["▁mischievous", "▁raccoon", "</s>"]


def test_user_captions_fit_the_text_slot_or_are_refused_by_count(tmp_path):
    import pytest

    from fewstep.zoo.train import TrainConfig, fit_text

    data = f"imagefolder:{_imagefolder(tmp_path / 'data', CAPTIONS)}"
    cfg, record = fit_text(TrainConfig(out=tmp_path / "out", data=data))
    tok = build_clip_tokenizer(cfg.family.text_length, cfg.family.words)
    longest = max(len(ids) for ids in tok(CAPTIONS, truncation=False).input_ids)
    assert longest <= cfg.family.text_length == record["text_length"] and cfg.family.text_length % 8 == 0
    assert record["longest_tokens"] >= longest and "corgi" in cfg.family.words
    with pytest.raises(ValueError, match=r"2 of 3 captions need more than text_length=8 tokens .*--text-length 16"):
        fit_text(TrainConfig(out=tmp_path / "out", data=data, text_length=8))
    long = f"imagefolder:{_imagefolder(tmp_path / 'long', [' '.join(['word'] * 90)])}"
    with pytest.raises(ValueError, match="1 of 1 captions need more than CLIP's 77 tokens"):
        fit_text(TrainConfig(out=tmp_path / "out", data=long))


def test_cut_prompts_are_named_in_torch_and_runtime_encoding(tiny_pipeline_dir, tmp_path):
    import pytest

    from fewstep.prompt_length import PromptCutWarning
    from fewstep.runtime.text import PromptTokenizer, TokenizerSpec
    from fewstep.sd3_pipeline import load_pipeline, warn_cut_prompts

    pipe = load_pipeline(tiny_pipeline_dir)
    long = "a small red circle left of an orange star above a big blue square below a green triangle"
    with pytest.warns(PromptCutWarning, match=r"exceed the CLIP slot of 16 tokens .*left of an orange"):
        warn_cut_prompts(pipe, [long, "a red circle"])
    pipe.tokenizer.save_pretrained(str(tmp_path / "tok"))
    runtime = PromptTokenizer(tmp_path / "tok", TokenizerSpec("tok", 16, "<|endoftext|>"))
    with pytest.warns(PromptCutWarning, match="1 prompt"):
        ids = runtime([long, "a red circle"])
    assert ids.shape == (2, 16)
