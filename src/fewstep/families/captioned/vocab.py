"""Caption concepts: content words and adjacent content-word pairs.

Pairs keep some binding and order that single words lose ("red circle" vs "blue circle",
"seven left" vs "two left"). The vocabulary is built deterministically from the training
captions: concepts in at least `min_count` captions, minus those in nearly every caption (they
say nothing about one image), most frequent first, ties in alphabetical order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

FUNCTION_WORDS = frozenset((
    "a", "an", "the", "of", "to", "in", "on", "at", "with", "and", "or", "is", "are", "be", "by", "for", "from",
    "its", "it", "this", "that", "these", "those", "as", "into",
))  # fmt: skip
_WORD = re.compile(r"[a-z0-9]+")


def content_words(caption: str) -> list[str]:
    return [w for w in _WORD.findall(caption.lower()) if w not in FUNCTION_WORDS]


def concepts(caption: str) -> list[str]:
    """The caption's distinct concepts, in order: each content word, then each adjacent pair."""
    words = content_words(caption)
    found = [*words, *(f"{a} {b}" for a, b in zip(words, words[1:]))]
    return list(dict.fromkeys(found))


def build_vocabulary(
    captions: Iterable[str], min_count: int = 5, max_concepts: int = 1024, max_share: float = 0.9
) -> list[str]:
    captions = list(captions)
    df = Counter(c for caption in captions for c in concepts(caption))
    limit = max_share * len(captions)
    kept = [(n, c) for c, n in df.items() if min_count <= n and (n <= limit or len(captions) < 2)]
    kept.sort(key=lambda nc: (-nc[0], nc[1]))
    return [c for _, c in kept[:max_concepts]]
