"""The SD3.5-Medium architecture at its real configuration, with random weights.

Nothing is downloaded: the configs below are SD3.5-Medium's published component configs
(MMDiT-X transformer, 16-channel VAE, CLIP-L, OpenCLIP bigG, T5-XXL), and the tokenizers are
fewstep's deterministic ones (ids fall inside the real vocabularies). Random weights give the
real compute and memory cost — what benchmarks need — not images.

`scale` overrides shrink widths/depths for tests; the benchmark uses the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

T5_LENGTH = 256  # diffusers' default max_sequence_length for SD3.5: 77 CLIP + 256 T5 tokens
CLIP_LENGTH = 77


@dataclass(frozen=True)
class SD35Config:
    """Component configs; `resolution` sets the transformer's default sample size."""

    resolution: int = 1024
    transformer: dict = field(
        default_factory=lambda: dict(
            num_layers=24,
            num_attention_heads=24,
            attention_head_dim=64,
            caption_projection_dim=1536,
            dual_attention_layers=tuple(range(13)),
            qk_norm="rms_norm",
            joint_attention_dim=4096,
            pooled_projection_dim=2048,
            patch_size=2,
            in_channels=16,
            out_channels=16,
            pos_embed_max_size=384,
        )
    )
    vae: dict = field(
        default_factory=lambda: dict(
            in_channels=3,
            out_channels=3,
            latent_channels=16,
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2,
            norm_num_groups=32,
            scaling_factor=1.5305,
            shift_factor=0.0609,
            use_quant_conv=False,
            use_post_quant_conv=False,
        )
    )
    clip_l: dict = field(
        default_factory=lambda: dict(
            hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
            projection_dim=768, hidden_act="quick_gelu",
        )
    )  # fmt: skip
    clip_g: dict = field(
        default_factory=lambda: dict(
            hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
            projection_dim=1280, hidden_act="gelu",
        )
    )  # fmt: skip
    t5: dict = field(
        default_factory=lambda: dict(
            d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64, relative_attention_num_buckets=32,
            relative_attention_max_distance=128, feed_forward_proj="gated-gelu", vocab_size=32128,
        )
    )  # fmt: skip
    shift: float = 3.0
    seed: int = 0

    def scaled(self, **overrides: dict) -> SD35Config:
        """A copy with some component fields replaced, e.g. `transformer={"num_layers": 2}`."""
        merged = {k: {**getattr(self, k), **v} for k, v in overrides.items()}
        return replace(self, **merged)


def build_transformer(cfg: SD35Config):
    from diffusers import SD3Transformer2DModel

    return SD3Transformer2DModel(sample_size=cfg.resolution // 8, **cfg.transformer)


def build_t5(cfg: SD35Config):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(is_encoder_decoder=False, use_cache=False, **cfg.t5))


def build_clip(spec: dict, eos: int, bos: int):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=49408, max_position_embeddings=CLIP_LENGTH, eos_token_id=eos, bos_token_id=bos, **spec
    )
    return CLIPTextModelWithProjection(config)


def parameter_count(module_factory, cfg: SD35Config) -> int:
    """Parameters of a component, counted on the meta device (no memory, no time)."""
    with torch.device("meta"):
        return sum(p.numel() for p in module_factory(cfg).parameters())


def build_pipeline(cfg: SD35Config | None = None, t5: bool = False):
    """The SD3.5-Medium pipeline with random weights (deterministic from `cfg.seed`).

    `t5=False` leaves the T5 encoder out (zero-filled 256-token slot, as diffusers does) but
    keeps its tokenizer, so the transformer still sees the real 333 text tokens.
    """
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

    from fewstep.zoo.tokenizers import build_clip_tokenizer, build_t5_tokenizer

    cfg = cfg or SD35Config()
    torch.manual_seed(cfg.seed)
    tok = build_clip_tokenizer(CLIP_LENGTH)
    eos, bos = tok.eos_token_id, tok.bos_token_id
    pipe = StableDiffusion3Pipeline(
        transformer=build_transformer(cfg),
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=cfg.shift),
        vae=AutoencoderKL(**cfg.vae),
        text_encoder=build_clip(cfg.clip_l, eos, bos),
        tokenizer=tok,
        text_encoder_2=build_clip(cfg.clip_g, eos, bos),
        tokenizer_2=build_clip_tokenizer(CLIP_LENGTH),
        text_encoder_3=build_t5(cfg) if t5 else None,
        tokenizer_3=build_t5_tokenizer(T5_LENGTH),
    )
    for module in (pipe.text_encoder, pipe.text_encoder_2, pipe.vae, pipe.transformer):
        module.eval()
    return pipe


def save_pipeline(path: Path, cfg: SD35Config | None = None, t5: bool = False) -> Path:
    """Build and save in diffusers layout (written atomically)."""
    from fewstep.fsutil import atomic_dir

    with atomic_dir(Path(path)) as tmp:
        build_pipeline(cfg, t5).save_pretrained(str(tmp))
    return Path(path)
