"""Train the toy family: evaluator, VAE, then the MMDiT teacher (rectified flow).

Each phase checkpoints (safetensors) every `checkpoint_every` steps and resumes from the
newest complete checkpoint; a finished phase writes its output directory atomically and is
skipped on re-run. The text encoders stay frozen at their seeded initialisation, as SD3
freezes its pretrained encoders: the transformer's joint attention learns to read them,
and each encoder stays independently droppable (the T5 slot can be zero-filled).
"""

from __future__ import annotations

import copy
import shutil
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, SD3Transformer2DModel, StableDiffusion3Pipeline

from fewstep.families import open_source
from fewstep.families.captioned import EVALUATOR_DIR
from fewstep.families.sd3 import ImageFolderSource
from fewstep.fsutil import atomic_dir, atomic_write_text
from fewstep.sd3_pipeline import encode_prompts
from fewstep.zoo import shapes_render as sr
from fewstep.zoo.builder import ShapesFamilyConfig, build_pipeline
from fewstep.zoo.evaluator import ShapesEvaluator, loss_fn
from fewstep.zoo.train_loop import (
    adamw,
    augment,
    compiled_forward,
    ema_update,
    optimize,
    pixels,
    recon_loss,
    to_tensor,
    train_loop,
)


@dataclass
class TrainConfig:
    out: Path
    data: str = "shapes"
    seed: int = 0
    batch: int = 64
    evaluator_steps: int = 1500
    vae_steps: int = 1500
    teacher_steps: int = 15000
    decoder_steps: int = 2500
    lr: float = 3e-4
    ema: float = 0.999
    drop_all: float = 0.1  # whole caption dropped: the CFG unconditional
    drop_encoder: tuple[float, float, float] = (0.1, 0.1, 0.3)  # CLIP-L, CLIP-G, T5
    checkpoint_every: int = 250
    progress: bool = True
    compile: bool = True  # torch.compile the teacher's forward (1.10x per step here; ~1 min to compile)
    family: ShapesFamilyConfig = field(default_factory=ShapesFamilyConfig)
    text_length: int | None = None  # None: the family's for shapes, fitted to the captions for user data
    vocab_words: int = 512  # user data: the most frequent caption words get a token of their own


def train_evaluator(cfg: TrainConfig, out: Path) -> None:
    """The evaluator learns exact labels from scenes of the whole grammar."""
    rng = np.random.default_rng(cfg.seed + 1)
    torch.manual_seed(cfg.seed + 1)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    model = ShapesEvaluator().train()
    opt = adamw(model.parameters(), cfg.lr * 3, weight_decay=1e-4)

    def step(_: int) -> float:
        b = sr.sample_batch(rng, cfg.batch * 2, cfg.family.resolution, held_out=bool(rng.random() < 0.5))
        labels = {k: torch.from_numpy(v) for k, v in b.labels.items()}
        return optimize(opt, loss_fn(model(augment(to_tensor(b.images), gen)), labels))

    work = out / "work" / "evaluator"
    train_loop("evaluator", work, cfg.evaluator_steps, {"model": model}, {"opt": opt}, rng, step, cfg, {"augment": gen})
    with atomic_dir(out / "evaluator") as tmp:
        model.eval().save(tmp)


def train_folder_evaluator(cfg: TrainConfig, out: Path) -> None:
    """User data: a caption evaluator trained on the folder (`fewstep.families.captioned`), which
    the assembled pipeline carries, so eval, gates and the split-ratio choice score it. A folder
    too small to hold out an FID reference trains without one (warned by name)."""
    from fewstep.families.captioned.train import EvaluatorConfig, TooFewHeldOut, train_caption_evaluator

    ecfg = EvaluatorConfig(
        steps=cfg.evaluator_steps, seed=cfg.seed + 1, checkpoint_every=cfg.checkpoint_every, progress=cfg.progress
    )
    try:
        train_caption_evaluator(
            _folder_path(cfg), cfg.family.resolution, out / "caption_evaluator", ecfg, out / "work" / "caption"
        )
    except TooFewHeldOut as e:
        warnings.warn(f"no caption evaluator: {e}", UserWarning, stacklevel=2)


def train_vae(cfg: TrainConfig, out: Path, init: Path) -> None:
    """Reconstruction (L1 + MSE) with a small KL term; then latent shift/scale from data."""
    source = open_source(cfg.data, cfg.family.resolution)
    rng = np.random.default_rng(cfg.seed + 2)
    torch.manual_seed(cfg.seed + 2)
    vae = AutoencoderKL.from_pretrained(str(init / "vae")).train()
    opt = adamw(vae.parameters(), cfg.lr * 2, weight_decay=0.0)

    def step(_: int) -> float:
        x = pixels(source, rng, cfg.batch)
        post = vae.encode(x).latent_dist
        recon = vae.decode(post.sample()).sample
        kl = post.kl().mean() / x[0].numel()
        return optimize(opt, recon_loss(recon, x) + 1e-4 * kl)

    work = out / "work" / "vae"
    train_loop("vae", work, cfg.vae_steps, {"vae": vae}, {"opt": opt}, rng, step, cfg)
    vae.eval()
    with torch.no_grad():
        x = pixels(source, np.random.default_rng(cfg.seed + 3), 512)
        z = vae.encode(x).latent_dist.mean
    vae.register_to_config(shift_factor=float(z.mean()), scaling_factor=float(1.0 / z.std()))
    with atomic_dir(out / "vae") as tmp:
        vae.save_pretrained(str(tmp))


def train_decoder(cfg: TrainConfig, out: Path) -> None:
    """Sharpen the VAE decoder with the encoder frozen: latents, and so the teacher, are unchanged."""
    source = open_source(cfg.data, cfg.family.resolution)
    rng = np.random.default_rng(cfg.seed + 5)
    torch.manual_seed(cfg.seed + 5)
    vae = AutoencoderKL.from_pretrained(str(out / "vae"))
    vae.encoder.requires_grad_(False)
    vae.decoder.train()
    opt = adamw(vae.decoder.parameters(), cfg.lr, weight_decay=0.0)

    def step(_: int) -> float:
        x = pixels(source, rng, cfg.batch)
        with torch.no_grad():
            z = vae.encode(x).latent_dist.sample()
        return optimize(opt, recon_loss(vae.decode(z).sample, x))

    work = out / "work" / "decoder"
    train_loop("decoder", work, cfg.decoder_steps, {"vae": vae}, {"opt": opt}, rng, step, cfg)
    with atomic_dir(out / "vae_final") as tmp:
        vae.eval().save_pretrained(str(tmp))


def train_teacher(
    cfg: TrainConfig, out: Path, init: Path, text_cache: dict[str, tuple[torch.Tensor, ...]] | None = None
) -> None:
    """Rectified flow, logit-normal t, independent text-encoder dropout, EMA.

    The text encoders are frozen, so each caption is encoded once (`text_cache`, filled as
    captions appear; a caller may pass one already filled).
    """
    source = open_source(cfg.data, cfg.family.resolution)
    rng = np.random.default_rng(cfg.seed + 4)
    torch.manual_seed(cfg.seed + 4)
    pipe = StableDiffusion3Pipeline.from_pretrained(str(init))
    vae = AutoencoderKL.from_pretrained(str(out / "vae")).eval()
    student = pipe.transformer.train()
    ema = copy.deepcopy(student).eval().requires_grad_(False)
    opt = adamw(student.parameters(), cfg.lr, weight_decay=0.0)
    shift, scale = vae.config.shift_factor, vae.config.scaling_factor
    p_drop = torch.tensor(cfg.drop_encoder)
    forward = compiled_forward(student, cfg.compile)
    text_cache = {} if text_cache is None else text_cache

    def step(i: int) -> float:
        batch = source.sample(rng, cfg.batch)
        captions = ["" if rng.random() < cfg.drop_all else c for c in batch.captions]
        drop = torch.rand(len(captions), 3) < p_drop
        with torch.no_grad():
            x0 = (vae.encode(to_tensor(batch.images) * 2 - 1).latent_dist.sample() - shift) * scale
            embeds, pooled = encode_prompts(pipe, captions, drop, cache=text_cache)
        t = torch.sigmoid(torch.randn(len(captions)))
        noise = torch.randn_like(x0)
        tt = t.view(-1, 1, 1, 1)
        xt = (1 - tt) * x0 + tt * noise
        pred = forward(
            hidden_states=xt, timestep=t * 1000, encoder_hidden_states=embeds, pooled_projections=pooled
        ).sample
        loss = ((pred - (noise - x0)) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        ema_update(ema, student, min(cfg.ema, (1 + i) / (10 + i)))
        return loss.item()

    work = out / "work" / "teacher"
    train_loop("teacher", work, cfg.teacher_steps, {"student": student, "ema": ema}, {"opt": opt}, rng, step, cfg)
    with atomic_dir(out / "transformer") as tmp:
        SD3Transformer2DModel.save_pretrained(ema, str(tmp))


def assemble(out: Path, init: Path, target: Path) -> None:
    """Write the trained teacher as one diffusers pipeline directory."""
    pipe = StableDiffusion3Pipeline.from_pretrained(str(init))
    final = out / "vae_final"
    pipe.vae = AutoencoderKL.from_pretrained(str(final if final.exists() else out / "vae"))
    pipe.transformer = SD3Transformer2DModel.from_pretrained(str(out / "transformer"))
    with atomic_dir(target) as tmp:
        pipe.save_pretrained(str(tmp))
        if (out / "caption_evaluator" / "config.json").exists():
            shutil.copytree(out / "caption_evaluator", tmp / EVALUATOR_DIR)


CLIP_MAX = 77  # CLIP's position embeddings: the longest text slot an SD3 pipeline has


def fit_text(cfg: TrainConfig) -> tuple[TrainConfig, dict]:
    """The tokenizers' vocabulary and the text slot for the training captions.

    User data (`imagefolder:`): the most frequent caption words join the vocabulary (built
    deterministically, as for shapes) and the slot is the longest caption's token count rounded up
    to a multiple of 8, so no caption is cut. A given `text_length` that would cut captions, or
    captions longer than CLIP's 77 tokens, are refused naming how many and the length needed."""
    import math

    from fewstep.zoo.tokenizers import build_clip_tokenizer, build_t5_tokenizer, caption_words

    if cfg.data == "shapes" and cfg.text_length is None:
        return cfg, {"text_length": cfg.family.text_length, "words": "shapes grammar"}
    # Every caption, held-out ones included: they are the prompts the evaluator generates.
    captions = [] if cfg.data == "shapes" else _folder(cfg, "all").captions
    words = caption_words(captions, cfg.vocab_words) if cfg.data != "shapes" else []
    clip_need = [len(i) for i in build_clip_tokenizer(CLIP_MAX, words)(captions, truncation=False).input_ids]
    t5_need = [len(i) for i in build_t5_tokenizer(CLIP_MAX, words)(captions, truncation=False).input_ids]
    need = [max(a, b) for a, b in zip(clip_need, t5_need)]
    longest, fits = max(need, default=0), 8 * math.ceil(max(need, default=0) / 8)
    if cfg.text_length is None:
        length = max(cfg.family.text_length, fits)
        if length > CLIP_MAX:
            raise ValueError(
                f"{sum(n > CLIP_MAX for n in need)} of {len(captions)} captions need more than CLIP's {CLIP_MAX} "
                f"tokens (the longest needs {longest}): shorten them"
            )
    else:
        length = cfg.text_length
        if cut := sum(n > length for n in need):
            raise ValueError(
                f"{cut} of {len(captions)} captions need more than text_length={length} tokens (the longest needs "
                f"{longest}): use --text-length {min(fits, CLIP_MAX)} or shorten them"
            )
    family = replace(cfg.family, text_length=length, t5_length=None, words=tuple(words))
    record = {"text_length": length, "captions": len(captions), "longest_tokens": longest,
              "words_with_own_token": len(words)}  # fmt: skip
    return replace(cfg, family=family), record


def _folder(cfg: TrainConfig, split: str) -> ImageFolderSource:
    return ImageFolderSource(_folder_path(cfg), cfg.family.resolution, split=split)


def _folder_path(cfg: TrainConfig) -> Path:
    return Path(cfg.data.partition(":")[2])


def init_pipeline(cfg: TrainConfig) -> Path:
    """The seeded, untrained pipeline every phase starts from (`<out>/init`), built once."""
    init = Path(cfg.out) / "init"
    if not (init / "model_index.json").exists():
        pipe = build_pipeline(cfg.family)
        with atomic_dir(init) as tmp:
            pipe.save_pretrained(str(tmp))
    return init


def train_all(cfg: TrainConfig) -> Path:
    """Run every phase not yet complete; return the pipeline directory."""
    out = Path(cfg.out)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg, text = fit_text(cfg)
    init = init_pipeline(cfg)
    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    record["text_fit"] = text
    atomic_write_text(out / "train_config.json", __import__("json").dumps(record, indent=2, default=str))
    if cfg.data == "shapes" and not (out / "evaluator" / "model.safetensors").exists():
        train_evaluator(cfg, out)
    if cfg.data != "shapes":
        train_folder_evaluator(cfg, out)
    if not (out / "vae" / "config.json").exists():
        train_vae(cfg, out, init)
    if not (out / "transformer" / "config.json").exists():
        train_teacher(cfg, out, init)
    if cfg.decoder_steps > 0 and not (out / "vae_final" / "config.json").exists():
        train_decoder(cfg, out)
    target = out / "pipeline"
    if not (target / "model_index.json").exists():
        assemble(out, init, target)
    return target
