"""Typed configuration of SD3.5-Flash distillation (the recipe's `distill` stage)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from fewstep.config import StrictModel
from fewstep.student import check_guidance_interval


class TrajectoryGuidance(StrictModel):
    """Phase 1: the student learns to jump between states of the teacher's ODE."""

    enabled: bool = True
    iterations: int = Field(300, ge=0)
    teacher_steps: int = Field(28, ge=4, description="Euler steps of the teacher's trajectories")
    num_prompts: int = Field(512, ge=1, description="training prompts whose trajectories are cached")
    batch: int = Field(32, ge=1, le=65536)
    lr: float = Field(1e-4, gt=0)


class GAN(StrictModel):
    """Adversarial term: heads on the fake score's block features (shared backbone)."""

    enabled: bool = True
    weight: float = Field(0.05, ge=0, description="lambda_G of the generator's adversarial loss")
    blocks: tuple[int, ...] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="fake-score blocks that feed a head (default: 1, 3, 5, those within the model's depth); "
        "given blocks must exist in the model",
    )
    reinit_p: float = Field(0.005, ge=0, le=1, description="per-step probability of re-initialising a head")
    real: Literal["data", "teacher"] = Field("teacher", description="real samples: data set images or teacher samples")


class DistributionMatching(StrictModel):
    """Phase 2: distribution matching (DMD) on the student's own trajectory."""

    enabled: bool = True
    iterations: int = Field(300, ge=0, description="fake-score iterations; the student updates every critic_ratio")
    timestep_sharing: bool = Field(True, description="false: DMD2's re-noising of x0 at a random t")
    critic_ratio: int = Field(5, ge=1)
    batch: int = Field(32, ge=1, le=65536)
    lr_student: float = Field(1e-5, gt=0)
    lr_fake: float = Field(1e-4, gt=0)
    regression_weight: float = Field(0.25, ge=0, description="keep the trajectory-guidance loss at this weight")
    gan: GAN = GAN()


class SplitTimestep(StrictModel):
    """Phase 3: two branches fine-tuned on disjoint student steps, merged by interpolation."""

    enabled: bool = True
    iterations: int = Field(100, ge=1, description="distribution-matching iterations per branch")
    boundary: float = Field(0.5, gt=0, lt=1, description="branch A: steps with T > boundary; B: the rest")
    ema: float = Field(0.99, ge=0, lt=1)
    ratios: tuple[Annotated[float, Field(ge=0, le=1)], ...] = Field(
        (0.0, 0.3, 0.5, 0.7, 1.0), min_length=1, description="merge ratios r tried, each in [0, 1]"
    )
    eval_images: int = Field(500, ge=8, description="images per ratio on the evaluator (training-split prompts)")
    fid_guard: float = Field(
        0.02, ge=0, description="ratios whose domain FID is within this fraction of the lowest compete on alignment"
    )


class Hardware(StrictModel):
    """How the trainer uses its devices. Device placement and the process group come from
    `accelerate` (`accelerate launch` with a DDP or FSDP config); these choose numerics and memory."""

    mixed_precision: Literal["no", "bf16", "fp16"] | None = Field(
        None,
        description="accelerate's autocast with float32 master weights; null: what `accelerate launch` / "
        "ACCELERATE_MIXED_PRECISION says (no when neither does)",
    )
    teacher_dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="the frozen teacher (real score), run without gradients"
    )
    activation_checkpointing: bool = Field(
        False, description="recompute the student's and fake score's block activations in backward (less memory)"
    )
    fused_optimizer: bool | None = Field(None, description="fused AdamW; null: on CUDA only")


class FlashConfig(StrictModel):
    """How to distil a K-step student from an SD3-family teacher."""

    steps: Literal[1, 2, 4, 8] = 4
    timesteps: list[float] | None = Field(
        None, description="student timesteps, descending from 1.0 (default: the shifted uniform grid)"
    )
    shift: float = Field(3.0, gt=0, description="shift of the default student timesteps and of training's t draws")
    grid: Literal["uniform", "scheduler"] = Field(
        "uniform",
        description="default student timesteps: 'uniform' = shift(shift, [1, (K-1)/K, ..., 1/K]) (clients need "
        "shift_terminal); 'scheduler' = the K timesteps a stock scheduler with `shift` gives for "
        "num_inference_steps=K (every client, OpenVINO GenAI included, samples them from the config alone)",
    )
    scheduler_shift: float | None = Field(
        None, gt=0, description="grid: scheduler: the student scheduler's `shift` (default: the teacher's)"
    )
    guidance: float = Field(4.0, ge=1.0, description="teacher CFG scale")
    guidance_interval: Annotated[tuple[float, float] | None, AfterValidator(check_guidance_interval)] = Field(
        None, description="[lo, hi]: the teacher's CFG only where lo <= t <= hi (trajectories and real score)"
    )
    t5_free: bool = Field(False, description="the student sees the T5 slot zero-filled; the teacher keeps T5")
    seed: int = Field(0, ge=0)
    data: str = Field("shapes", description="'shapes' or 'imagefolder:PATH': training prompts")

    @field_validator("data")
    @classmethod
    def _data(cls, value: str) -> str:
        from fewstep.families import data_family, families

        if data_family(value) is None:
            allowed = [n + (":PATH" if n == "imagefolder" else "") for f in families() for n in f.data_sources]
            raise ValueError(f"data {value!r}: unknown source; allowed: {', '.join(allowed)}")
        return value

    trajectory_guidance: TrajectoryGuidance = TrajectoryGuidance()
    distribution_matching: DistributionMatching = DistributionMatching()
    split_timestep: SplitTimestep = SplitTimestep(enabled=False)
    checkpoint_every: int = Field(50, ge=1)
    hardware: Hardware = Hardware()

    @model_validator(mode="after")
    def _check_timesteps(self) -> FlashConfig:
        if self.timesteps is not None:
            if self.grid != "uniform":
                raise ValueError(f"grid: {self.grid!r} chooses the timesteps; give either grid or timesteps, not both")
            ts = self.timesteps
            if len(ts) != self.steps:
                raise ValueError(f"timesteps: {len(ts)} values given for steps={self.steps}")
            if abs(ts[0] - 1.0) > 1e-6 or any(b >= a for a, b in zip(ts, ts[1:])) or ts[-1] <= 0:
                raise ValueError(f"timesteps: must start at 1.0 and strictly decrease above 0 (got {ts})")
        return self
