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
