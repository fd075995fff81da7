"""Build the toy SD3.5-architecture pipeline from configs, offline and deterministically.

The same diffusers/transformers classes as SD3.5, scaled down: an MMDiT with dual-attention
layers and RMS qk-norm, a 16-channel-free 4-channel VAE at 4x downsampling, two CLIP text
encoders with projection (the CLIP-L / CLIP-G slots) and a T5 encoder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel

from fewstep.zoo.tokenizers import build_clip_tokenizer, build_t5_tokenizer


@dataclass(frozen=True)
class ShapesFamilyConfig:
    """Sizes of the toy family. `resolution` is the image side in pixels."""

    resolution: int = 32
    text_length: int = 16
    t5_length: int | None = None  # None: the CLIP length (SD3.5: 77 CLIP + 256 T5 tokens)
    latent_channels: int = 4
    vae_channels: tuple[int, ...] = (32, 64, 64)
    clip_dims: tuple[int, int] = (32, 64)
    t5_dim: int = 128
    layers: int = 6
    heads: int = 4
    head_dim: int = 32
    dual_attention_layers: tuple[int, ...] = (0, 1)
    shift: float = 3.0
    seed: int = 0
    words: tuple[str, ...] = ()  # vocabulary beyond the shapes grammar (from user captions)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def build_vae(cfg: ShapesFamilyConfig) -> AutoencoderKL:
    n = len(cfg.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=cfg.vae_channels,
        layers_per_block=1,
        latent_channels=cfg.latent_channels,
        norm_num_groups=16,
        sample_size=cfg.resolution,
        use_quant_conv=False,
        use_post_quant_conv=False,
        scaling_factor=1.0,
        shift_factor=0.0,
    )


def build_transformer(cfg: ShapesFamilyConfig) -> SD3Transformer2DModel:
    latent = cfg.resolution // 2 ** (len(cfg.vae_channels) - 1)
    return SD3Transformer2DModel(
        sample_size=latent,
        patch_size=2,
        in_channels=cfg.latent_channels,
        out_channels=cfg.latent_channels,
        num_layers=cfg.layers,
        attention_head_dim=cfg.head_dim,
        num_attention_heads=cfg.heads,
        joint_attention_dim=cfg.t5_dim,
        caption_projection_dim=cfg.heads * cfg.head_dim,
        pooled_projection_dim=sum(cfg.clip_dims),
        pos_embed_max_size=latent,
        dual_attention_layers=cfg.dual_attention_layers,
        qk_norm="rms_norm",
    )


def build_clip(cfg: ShapesFamilyConfig, dim: int, vocab_size: int, eos: int, bos: int) -> CLIPTextModelWithProjection:
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=dim,
        intermediate_size=dim * 4,
        projection_dim=dim,
        num_hidden_layers=3,
        num_attention_heads=2,
        max_position_embeddings=cfg.text_length,
        hidden_act="gelu",
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    return CLIPTextModelWithProjection(config)


def build_t5(cfg: ShapesFamilyConfig, vocab_size: int) -> T5EncoderModel:
    config = T5Config(
        vocab_size=vocab_size,
        d_model=cfg.t5_dim,
        d_kv=32,
        d_ff=cfg.t5_dim * 2,
        num_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu",
        is_encoder_decoder=False,
        use_cache=False,
    )
    return T5EncoderModel(config)


def build_pipeline(cfg: ShapesFamilyConfig | None = None) -> StableDiffusion3Pipeline:
    """A randomly initialised toy pipeline (deterministic from `cfg.seed`)."""
    cfg = cfg or ShapesFamilyConfig()
    torch.manual_seed(cfg.seed)
    tok = build_clip_tokenizer(cfg.text_length, cfg.words)
    tok_t5 = build_t5_tokenizer(cfg.t5_length or cfg.text_length, cfg.words)
    eos, bos = tok.eos_token_id, tok.bos_token_id
    pipe = StableDiffusion3Pipeline(
        transformer=build_transformer(cfg),
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=cfg.shift),
        vae=build_vae(cfg),
        text_encoder=build_clip(cfg, cfg.clip_dims[0], len(tok), eos, bos),
        tokenizer=tok,
        text_encoder_2=build_clip(cfg, cfg.clip_dims[1], len(tok), eos, bos),
        tokenizer_2=build_clip_tokenizer(cfg.text_length, cfg.words),
        text_encoder_3=build_t5(cfg, len(tok_t5)),
        tokenizer_3=tok_t5,
    )
    for module in (pipe.text_encoder, pipe.text_encoder_2, pipe.text_encoder_3, pipe.vae, pipe.transformer):
        module.eval()
    return pipe
