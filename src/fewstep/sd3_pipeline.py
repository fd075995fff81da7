"""Load SD3-family pipelines (a diffusers directory or a zoo name) and encode prompts.

`encode_prompts` reproduces `StableDiffusion3Pipeline.encode_prompt` (CLIP penultimate
hidden states, CLIP-L ‖ CLIP-G features zero-padded to the T5 width, then T5 tokens along
the sequence), with per-encoder drop masks for training and a zero-filled T5 slot when the
pipeline has no T5.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import StableDiffusion3Pipeline

from fewstep.errors import ModelError
from fewstep.logs import quiet_loaded_libraries


def resolve_model(model: str | Path) -> Path:
    """A pipeline directory for `zoo:<name>` or a path; errors name what is missing."""
    from fewstep.families import resolve_prefixed

    text = str(model)
    if (resolved := resolve_prefixed(text)) is not None:  # e.g. zoo:<name>, owned by a family
        return resolved
    path = Path(text)
    if not (path / "model_index.json").exists():
        raise FileNotFoundError(f"not a diffusers pipeline directory (no model_index.json): {path}")
    return path


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def drop_build_paths(model_dir: Path) -> None:
    """diffusers and transformers record the directory a model was loaded from (`_name_or_path`)
    in model_index.json and each model's config.json: drop it (nothing shipped names a
    build-machine path)."""
    for f in [model_dir / "model_index.json", *model_dir.rglob("config.json")]:
        if not f.is_file():
            continue
        data = json.loads(f.read_text())
        if isinstance(data, dict) and data.pop("_name_or_path", None) is not None:
            f.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_model_index(path: Path) -> dict:
    f = path / "model_index.json"
    try:
        index = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{f}: not valid JSON ({e})") from None
    if not isinstance(index, dict):
        raise ModelError(f"{f}: not a JSON object")
    return index


def check_weights(path: Path, index: dict) -> None:
    """Every model component holds safetensors weights that parse; pickle-only weights are refused
    before anything is loaded (a pickle can run code)."""
    from safetensors import SafetensorError, safe_open

    for name, entry in index.items():
        folder = path / name
        if name.startswith("_") or not isinstance(entry, list) or not folder.is_dir():
            continue
        weights = [f for f in folder.iterdir() if f.suffix == ".safetensors"]
        pickles = [f.name for f in folder.iterdir() if f.suffix in PICKLE_SUFFIXES]
        if pickles and not weights:
            raise ModelError(
                f"{folder}: only pickle weights ({', '.join(sorted(pickles)[:3])}); fewstep loads safetensors only "
                "(a pickle can run code): convert them, e.g. with diffusers' save_pretrained(safe_serialization=True)"
            )
        for f in weights:
            try:
                with safe_open(str(f), framework="numpy") as handle:
                    handle.keys()
            except (SafetensorError, OSError) as e:
                raise ModelError(f"{f}: not a readable safetensors file ({str(e)[:120]})") from None


def load_pipeline(model: str | Path, drop_t5: bool = False) -> StableDiffusion3Pipeline:
    """Load an SD3-family pipeline on the CPU in float32, optionally without T5 (safetensors only;
    a broken directory is a ModelError naming the file)."""
    path = resolve_model(model)
    index = read_model_index(path)
    check_weights(path, index)
    # A T5-free directory records the slot as [null, null]; diffusers needs it passed as None.
    absent = [k for k in ("text_encoder_3", "tokenizer_3") if index.get(k) in (None, [None, None])]
    extra = {k: None for k in ("text_encoder_3", "tokenizer_3") if drop_t5 or k in absent}
    quiet_loaded_libraries()  # no loading bars or advisory lines unless --verbose
    try:
        pipe = StableDiffusion3Pipeline.from_pretrained(str(path), dtype=torch.float32, use_safetensors=True, **extra)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{path}: diffusers cannot load this pipeline ({type(e).__name__}: {str(e)[:200]})") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


def text_length(pipe: StableDiffusion3Pipeline) -> int:
    """Token length of the CLIP encoders."""
    return int(pipe.tokenizer.model_max_length)


T5_DEFAULT_LENGTH = 256  # diffusers' StableDiffusion3Pipeline default `max_sequence_length`


def t5_length(pipe: StableDiffusion3Pipeline) -> int:
    """Token length of the T5 slot (zero-filled when there is no T5 encoder).

    The T5 tokenizer's own limit capped at diffusers' default of 256 (SD3.5: 77 CLIP + 256
    T5 = 333 text tokens); a family without a T5 tokenizer uses the CLIP length.
    """
    tok = getattr(pipe, "tokenizer_3", None)
    if tok is None:
        return text_length(pipe)
    return min(int(tok.model_max_length), T5_DEFAULT_LENGTH)


def encoder_length(pipe: StableDiffusion3Pipeline, name: str) -> int:
    """Token length of one text encoder component."""
    return t5_length(pipe) if name == "text_encoder_3" else text_length(pipe)


@torch.no_grad()
def _clip(pipe, index: int, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    tok = (pipe.tokenizer, pipe.tokenizer_2)[index]
    enc = (pipe.text_encoder, pipe.text_encoder_2)[index]
    ids = tok(captions, padding="max_length", max_length=text_length(pipe), truncation=True, return_tensors="pt")
    out = enc(ids.input_ids, output_hidden_states=True)
    return out.hidden_states[-2], out[0]


_WARNED: set[tuple[str, str]] = set()  # (encoder, prompt) already reported in this process


def warn_cut_prompts(pipe, captions: list[str]) -> None:
    """Name the prompts the CLIP or T5 tokenizer will cut (each once per process)."""
    from fewstep.prompt_length import warn_cut

    slots = [("CLIP", pipe.tokenizer, text_length(pipe))]
    if getattr(pipe, "text_encoder_3", None) is not None:
        slots.append(("T5", pipe.tokenizer_3, t5_length(pipe)))
    for name, tok, length in slots:
        fresh = sorted({c for c in captions if (name, c) not in _WARNED})
        if not fresh:
            continue
        needed = [len(ids) for ids in tok(fresh, truncation=False).input_ids]
        cut = [(c, n) for c, n in zip(fresh, needed) if n > length]
        _WARNED.update((name, c) for c in fresh)
        warn_cut(cut, length, name)


def _encode_all(pipe, captions: list[str]) -> tuple[torch.Tensor, ...]:
    """(CLIP-L hidden, CLIP-L pooled, CLIP-G hidden, CLIP-G pooled, T5 hidden) of a batch."""
    warn_cut_prompts(pipe, captions)
    (h1, p1), (h2, p2) = _clip(pipe, 0, captions), _clip(pipe, 1, captions)
    return h1, p1, h2, p2, _t5(pipe, captions, t5_length(pipe))


def _encode_cached(pipe, captions: list[str], cache: dict[str, tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    missing = sorted(set(captions) - cache.keys())
    if missing:
        for caption, *rows in zip(missing, *_encode_all(pipe, missing)):
            cache[caption] = tuple(r.clone() for r in rows)
    return tuple(torch.stack(parts) for parts in zip(*(cache[c] for c in captions)))


@torch.no_grad()
def _t5(pipe, captions: list[str], length: int) -> torch.Tensor:
    if pipe.text_encoder_3 is None:
        return torch.zeros(len(captions), length, pipe.transformer.config.joint_attention_dim)
    ids = pipe.tokenizer_3(captions, padding="max_length", max_length=length, truncation=True, return_tensors="pt")
    return pipe.text_encoder_3(ids.input_ids)[0]


@torch.no_grad()
def encode_prompts(
    pipe: StableDiffusion3Pipeline,
    captions: list[str],
    drop: torch.Tensor | None = None,
    cache: dict[str, tuple[torch.Tensor, ...]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(prompt_embeds, pooled) as the SD3 pipeline builds them.

    `drop` (N, 3) bool masks replace CLIP-L / CLIP-G with the empty prompt's encoding and
    zero the T5 slot, per sample (SD3's independent text-encoder dropout). `cache` (frozen
    encoders only) keeps each caption's encoder outputs, so only unseen captions are encoded.
    """
    n = len(captions)

    def encode(texts: list[str]) -> tuple[torch.Tensor, ...]:
        return _encode_all(pipe, texts) if cache is None else _encode_cached(pipe, texts, cache)

    h1, p1, h2, p2, t5 = encode(captions)
    if drop is not None:
        e1, q1, e2, q2, _ = encode([""])
        d = drop.view(n, 3, 1, 1).float()
        h1 = h1 * (1 - d[:, 0]) + e1 * d[:, 0]
        h2 = h2 * (1 - d[:, 1]) + e2 * d[:, 1]
        p1 = p1 * (1 - d[:, 0, 0]) + q1 * d[:, 0, 0]
        p2 = p2 * (1 - d[:, 1, 0]) + q2 * d[:, 1, 0]
        t5 = t5 * (1 - d[:, 2])
    clip = torch.cat([h1, h2], dim=-1)
    clip = torch.nn.functional.pad(clip, (0, t5.shape[-1] - clip.shape[-1]))
    return torch.cat([clip, t5], dim=-2), torch.cat([p1, p2], dim=-1)
