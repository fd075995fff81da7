"""Deterministic, offline tokenizers for the toy family.

`tokenizers`' own trainers give a different vocabulary in every process, so the CLIP BPE
merges are learned here by a plain, tie-broken BPE over a fixed word list, and the T5
Unigram vocabulary scores whole words above characters. Unknown words still tokenize
(they fall back to characters), as with real tokenizers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from transformers import CLIPTokenizer, T5Tokenizer

from fewstep.zoo import shapes_data as sd

EXTRA_WORDS = [
    "in",
    "is",
    "are",
    "there",
    "photo",
    "drawing",
    "render",
    "shape",
    "shapes",
    "object",
    "objects",
    "colour",
    "color",
    "colours",
    "center",
    "centre",
    "middle",
    "corner",
    "under",
    "over",
    "beside",
    "near",
    "big",
    "tiny",
    "black",
    "white",
    "gray",
    "grey",
    "four",
    "five",
]


def domain_words() -> list[str]:
    """Every word the captions use, plus a few common neighbours, sorted."""
    words: set[str] = set(EXTRA_WORDS)
    for templates in sd.TEMPLATES.values():
        for t in templates:
            for w in t.replace(",", " ").split():
                if not w.startswith("{"):
                    words.add(w)
    for group in (sd.SHAPES, sd.COLOURS, sd.SIZES, sd.RELATIONS, sd.POSITION_PHRASES.values(), sd.COUNT_WORDS.values()):
        for phrase in group:
            words.update(phrase.split())
    words.update(s + "s" for s in sd.SHAPES)
    words.update(("a", "an"))
    return sorted(words)


def caption_words(captions: Iterable[str], limit: int = 512) -> list[str]:
    """The `limit` most frequent words of user captions (lower-cased letters; ties alphabetical),
    sorted: the words that get a token of their own. Rarer words still tokenize, in pieces."""
    counts = Counter(w for c in captions for w in re.findall(r"[a-z]+", c.lower()))
    top = sorted(counts, key=lambda w: (-counts[w], w))[:limit]
    return sorted(top)


def vocabulary(words: Sequence[str] = ()) -> list[str]:
    """The toy grammar's words plus `words` (e.g. from user captions), sorted and unique."""
    return sorted(set(domain_words()) | set(words))


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2/CLIP byte-level alphabet: printable bytes map to themselves, the rest shift past 255.
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    mapping, extra = {}, 0
    for b in range(256):
        if b in keep:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def learn_bpe(words: list[str]) -> list[tuple[str, str]]:
    """Merges that turn every word into a single `word</w>` token (deterministic ties)."""
    seqs = {w: [*w[:-1], w[-1] + "</w>"] for w in words}
    merges: list[tuple[str, str]] = []
    while True:
        pairs: Counter[tuple[str, str]] = Counter()
        for seq in seqs.values():
            pairs.update(zip(seq, seq[1:]))
        if not pairs:
            return merges
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for w, seq in seqs.items():
            out, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and (seq[i], seq[i + 1]) == best:
                    out.append(seq[i] + seq[i + 1])
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            seqs[w] = out


def build_clip_tokenizer(max_length: int = 16, words: Sequence[str] = ()) -> CLIPTokenizer:
    """A CLIP BPE tokenizer over the toy vocabulary and `words` (pads with end-of-text, as CLIP-L)."""
    base = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for tok in base + [b + "</w>" for b in base]:
        vocab.setdefault(tok, len(vocab))
    merges = learn_bpe(vocabulary(words))
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)


def build_t5_tokenizer(max_length: int = 16, words: Sequence[str] = ()) -> T5Tokenizer:
    """A T5 Unigram tokenizer over the toy vocabulary and `words`: whole words score above their
    characters."""
    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [("▁" + w, -1.0) for w in vocabulary(words)]
    chars = sorted({chr(c) for c in range(ord("!"), ord("~") + 1)})
    pieces += [(c, -10.0) for c in chars]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=max_length)
