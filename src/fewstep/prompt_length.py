"""Prompts longer than a text encoder's slot are cut by the tokenizer, silently in diffusers
(one logged line) and in `tokenizers`: the words past the slot never reach the model. fewstep
says so by name wherever prompts are encoded (eval, distill, generate)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence


class PromptCutWarning(UserWarning):
    """A prompt has more tokens than its encoder's slot: the end of it is ignored."""


def warn_cut(cut: Sequence[tuple[str, int]], max_length: int, encoder: str) -> None:
    """Warn once for the prompts in `cut` ((prompt, tokens it needs)) that exceed `max_length`."""
    if not cut:
        return
    worst = max(n for _, n in cut)
    shown = "; ".join(f"{p!r} ({n} tokens)" for p, n in list(cut)[:3])
    more = f" and {len(cut) - 3} more" if len(cut) > 3 else ""
    warnings.warn(
        f"{len(cut)} prompt(s) exceed the {encoder} slot of {max_length} tokens and are cut (up to {worst} "
        f"needed): {shown}{more}",
        PromptCutWarning,
        stacklevel=3,
    )
