"""`fewstep distill --plan`: the peak memory one device needs for a distillation run, before it runs.

Per device, in bytes:

- **student and fake score** (trained): float32 weights, gradients and AdamW's two moments,
  16 bytes per parameter each; FSDP shards these over the devices, DDP replicates them;
- **teacher** (the frozen real score): 4 or 2 bytes per parameter (float32 / bfloat16), replicated;
- **EMA** of the student (split-timestep branches): 4 bytes per parameter;
- **activations** of the forward passes that keep a graph at the same time: the fake-score step
  holds 1 (flow matching) + 2 (discriminator on fake and real samples, with GAN heads) passes, the
  generator step 1 (student) + 1 (the fake score for the adversarial term); trajectory guidance 1.
  A joint-attention block stores about 34 bytes per token and hidden unit with 16-bit activations
  (Korthikanti et al. 2022, with fused attention that keeps no score matrix), twice that in
  float32; with activation checkpointing a block keeps only its input (2 bytes per token and
  unit) and one block is recomputed at a time;
- a fixed allowance for the CUDA context and allocator (1 GiB + 10 %).

These are estimates for choosing switches; `benchmarks/gpu_check.py` measures the peak next to them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

GIB = 1024**3
ACT_BYTES_PER_TOKEN_UNIT = 34  # per block, 16-bit activations, fused attention
CHECKPOINT_BYTES_PER_TOKEN_UNIT = 2  # a checkpointed block keeps its 16-bit input


class PlanError(ValueError):
    """The plan does not fit; the message names the switches that would make it fit."""


@dataclass(frozen=True)
class PlanInputs:
    params: int  # transformer parameters
    layers: int
    hidden: int  # heads * head_dim
    image_tokens: int
    text_tokens: int
    batch: int  # per device
    devices: int = 1
    strategy: Literal["ddp", "fsdp"] = "ddp"
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    teacher_dtype: Literal["float32", "bfloat16"] = "float32"
    activation_checkpointing: bool = False
    gan: bool = True
    ema: bool = False


@dataclass(frozen=True)
class MemoryPlan:
    inputs: PlanInputs
    trained_states: int  # student + fake score: weights, gradients, AdamW moments
    teacher: int
    ema: int
    activations: int
    overhead: int

    @property
    def total(self) -> int:
        return self.trained_states + self.teacher + self.ema + self.activations + self.overhead

    def to_json(self) -> dict:
        return {
            "inputs": asdict(self.inputs),
            **{k: getattr(self, k) for k in ("trained_states", "teacher", "ema", "activations", "overhead", "total")},
        }

    def rows(self) -> list[tuple[str, float]]:
        """(part, GiB) for printing."""
        parts = ("trained_states", "teacher", "ema", "activations", "overhead", "total")
        return [(p.replace("_", " "), getattr(self, p) / GIB) for p in parts]


def tokens_for(config: dict, resolution: int, text_tokens: int) -> tuple[int, int]:
    """(image tokens, text tokens) of an SD3 transformer at `resolution` px (VAE factor 8)."""
    side = resolution // 8 // int(config.get("patch_size", 2))
    return side * side, text_tokens


def count_parameters(config: dict) -> int:
    """Parameters of an SD3Transformer2DModel built from `config` on the meta device (no memory)."""
    import inspect

    import torch
    from diffusers import SD3Transformer2DModel

    known = set(inspect.signature(SD3Transformer2DModel.__init__).parameters)
    with torch.device("meta"):
        model = SD3Transformer2DModel(**{k: v for k, v in config.items() if k in known})
    return sum(p.numel() for p in model.parameters())


def plan_inputs(
    config: dict, resolution: int, text_tokens: int, batch: int, params: int | None = None, **switches
) -> PlanInputs:
    """PlanInputs for an SD3 transformer `config` at `resolution` px (`params` when already
    counted); `switches` are the other PlanInputs fields (devices, strategy, precision,
    checkpointing, gan, ema)."""
    image_tokens, text = tokens_for(config, resolution, text_tokens)
    return PlanInputs(
        params=params if params is not None else count_parameters(config),
        layers=int(config["num_layers"]),
        hidden=int(config["num_attention_heads"]) * int(config["attention_head_dim"]),
        image_tokens=image_tokens,
        text_tokens=text,
        batch=batch,
        **switches,
    )


def plan_memory(inp: PlanInputs) -> MemoryPlan:
    """The estimate described in the module docstring."""
    shard = inp.devices if inp.strategy == "fsdp" else 1
    trained = 2 * 16 * inp.params // shard
    teacher = inp.params * (2 if inp.teacher_dtype == "bfloat16" else 4)
    ema = 4 * inp.params if inp.ema else 0
    scale = 1 if inp.mixed_precision in ("bf16", "fp16") else 2  # float32 activations are twice as large
    per_block = inp.batch * (inp.image_tokens + inp.text_tokens) * inp.hidden
    if inp.activation_checkpointing:
        per_pass = per_block * (CHECKPOINT_BYTES_PER_TOKEN_UNIT * inp.layers + ACT_BYTES_PER_TOKEN_UNIT) * scale
    else:
        per_pass = per_block * ACT_BYTES_PER_TOKEN_UNIT * inp.layers * scale
    passes = 3 if inp.gan else 1  # the fake-score step: flow matching + discriminator on fake and real
    activations = passes * per_pass
    base = trained + teacher + ema + activations
    return MemoryPlan(inp, trained, teacher, ema, activations, GIB + base // 10)


def check_fits(plan: MemoryPlan, device_bytes: int) -> None:
    """Raise PlanError naming what to change when the plan exceeds `device_bytes`."""
    if plan.total <= device_bytes:
        return
    inp = plan.inputs
    fixes = []
    if not inp.activation_checkpointing and plan.activations > plan.trained_states / 4:
        fixes.append("hardware.activation_checkpointing: true (recomputes block activations)")
    if inp.strategy == "ddp" and inp.devices > 1:
        fixes.append("accelerate launch --config_file configs/accelerate/fsdp.yaml (shards student and fake score)")
    if inp.mixed_precision == "no":
        fixes.append("hardware.mixed_precision: bf16 (halves activations)")
    if inp.teacher_dtype == "float32":
        fixes.append("hardware.teacher_dtype: bfloat16 (halves the teacher)")
    if inp.batch > 1:
        fixes.append(f"distribution_matching.batch / trajectory_guidance.batch below {inp.batch}")
    if inp.strategy == "fsdp" or inp.devices == 1:
        fixes.append("more devices with FSDP")
    raise PlanError(
        f"the plan needs {plan.total / GIB:.1f} GiB per device, the device has {device_bytes / GIB:.1f} GiB; "
        "change: " + "; ".join(fixes)
    )
