"""The distillation loop on `accelerate`: one CPU process, or `accelerate launch` (DDP/FSDP) on
CPUs or CUDA devices. Device and process group come from accelerate; `FlashConfig.hardware`
chooses the numerics (autocast with float32 master weights, a bfloat16 teacher) and memory
(activation checkpointing). Random draws come from the CPU generators on every device, so a
run's stream is the same wherever it runs; batches move to the device as they are used.

Phases run in order (trajectory guidance, then distribution matching) under one global
step counter, so a checkpoint names its phase implicitly. The random student step k of
backward simulation is broadcast from rank 0 (METHOD.md's first pitfall). Checkpoints hold
student, fake score, GAN heads, optimizers and RNG state; a killed run resumes.
"""

from __future__ import annotations

import contextlib
import copy
import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast
from safetensors.torch import load_file
from tqdm.auto import tqdm

from fewstep.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from fewstep.distill.config import FlashConfig
from fewstep.distill.dmd import dm_direction, dm_loss, fake_score_loss, generator_point, shifted_uniform
from fewstep.distill.gan import DiscriminatorHeads, discriminate, discriminator_loss, generator_adv_loss
from fewstep.distill.schedule import student_sample
from fewstep.distill.trajectories import Trajectories
from fewstep.distill.trajectory_guidance import trajectory_guidance_loss
from fewstep.families import open_source
from fewstep.sd3_pipeline import encode_prompts


@dataclass
class Conditioning:
    student: tuple[torch.Tensor, torch.Tensor]  # per trajectory caption
    teacher: tuple[torch.Tensor, torch.Tensor]
    uncond: tuple[torch.Tensor, torch.Tensor]  # the teacher's empty prompt, batch 1


def conditioning(teacher_pipe, captions: list[str], t5_free: bool) -> Conditioning:
    """Teacher conditioning is full; a T5-free student sees the T5 slot zero-filled."""
    teacher = encode_prompts(teacher_pipe, captions)
    if t5_free:
        drop = torch.zeros(len(captions), 3, dtype=torch.bool)
        drop[:, 2] = True
        student = encode_prompts(teacher_pipe, captions, drop)
    else:
        student = teacher
    return Conditioning(student, teacher, encode_prompts(teacher_pipe, [""]))


def _pick(cond: tuple[torch.Tensor, torch.Tensor], idx) -> tuple[torch.Tensor, torch.Tensor]:
    return cond[0][idx], cond[1][idx]


def accelerator(mixed_precision: str | None) -> Accelerator:
    """accelerate's Accelerator with this run's autocast setting. Its state is a per-process
    singleton that keeps the first setting, so a run asking for another one (tests, a recipe
    with runs of different precision in one process) resets it; the process group is kept."""
    from accelerate.state import AcceleratorState

    shared = AcceleratorState._shared_state
    if mixed_precision is not None and shared and AcceleratorState().mixed_precision != mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=mixed_precision)


def place_teacher(source: torch.nn.Module, device: torch.device, dtype: str) -> torch.nn.Module:
    """The frozen real score on the training device in `dtype` (the pipeline's own module where
    nothing changes, a copy otherwise so the pipeline stays as loaded)."""
    want = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    if device.type == "cpu" and want == torch.float32:
        return source
    return copy.deepcopy(source).to(device, want).eval().requires_grad_(False)


def default_gan_blocks(num_layers: int) -> tuple[int, ...]:
    """Blocks 1, 3 and 5 where the model has them (its last block for a shallower one)."""
    return tuple(b for b in (1, 3, 5) if b < num_layers) or (num_layers - 1,)


class DistillRun:
    """State of one distillation run; `step(i)` performs global step i."""

    def __init__(
        self,
        teacher_pipe,
        traj: Trajectories,
        cfg: FlashConfig,
        allowed_steps: list[int] | None = None,
        init: Path | None = None,
        ema: float | None = None,
    ):
        self.cfg, self.traj = cfg, traj
        hw = cfg.hardware
        self.acc = accelerator(hw.mixed_precision)
        self.device = self.acc.device
        torch.manual_seed(cfg.seed + self.acc.process_index)
        self.rng = np.random.default_rng(cfg.seed + 17 * self.acc.process_index)
        tg, dm = cfg.trajectory_guidance, cfg.distribution_matching
        self.tg_iters = tg.iterations if tg.enabled else 0
        self.dm_iters = dm.iterations if dm.enabled else 0
        self.allowed = allowed_steps or list(range(cfg.steps))  # student steps this run trains
        self.cond = conditioning(teacher_pipe, traj.captions, cfg.t5_free)
        self.pipe = teacher_pipe
        source = teacher_pipe.transformer.eval().requires_grad_(False)
        self.student = copy.deepcopy(source).train().requires_grad_(True)  # float32 master weights
        self.fake = copy.deepcopy(source).train().requires_grad_(True)
        self.teacher = place_teacher(source, self.device, hw.teacher_dtype)
        if hw.activation_checkpointing:
            for net in (self.student, self.fake):
                net.enable_gradient_checkpointing()
        tcfg = self.teacher.config
        self.use_gan = dm.gan.enabled and self.dm_iters > 0
        blocks = dm.gan.blocks or default_gan_blocks(tcfg.num_layers)
        self.heads = DiscriminatorHeads(tcfg.num_attention_heads * tcfg.attention_head_dim, blocks)
        if init is not None:  # continue from another run's checkpoint (split-timestep branches)
            for name, module in (("student", self.student), ("fake", self.fake), ("heads", self.heads)):
                module.load_state_dict(load_file(str(init / f"{name}.safetensors")))
        self.ema_decay = ema
        self.ema = copy.deepcopy(self.student).eval().requires_grad_(False) if ema is not None else None
        fused = hw.fused_optimizer if hw.fused_optimizer is not None else self.device.type == "cuda"
        self.opt_s = torch.optim.AdamW(self.student.parameters(), tg.lr, weight_decay=0.0, fused=fused or None)
        fake_params = list(self.fake.parameters()) + (list(self.heads.parameters()) if self.use_gan else [])
        self.opt_f = torch.optim.AdamW(fake_params, dm.lr_fake, weight_decay=0.0, fused=fused or None)
        self.source = open_source(cfg.data) if self.use_gan and dm.gan.real == "data" else None

    def resume(self, ckpt_root: Path) -> int:
        last = latest_checkpoint(ckpt_root)
        if last is None:
            return 0
        start = load_checkpoint(last, self.modules(), self.optims(), self.rng)["step"]
        if self.acc.process_index:  # the checkpoint holds rank 0's stream; keep ranks distinct
            self.rng = np.random.default_rng([self.cfg.seed, self.acc.process_index, start])
        return start

    def modules(self) -> dict[str, torch.nn.Module]:
        mods = {"student": self.student, "fake": self.fake, "heads": self.heads}
        if self.ema is not None:
            mods["ema"] = self.ema
        return mods

    def _update_ema(self) -> None:
        if self.ema is None:
            return
        with torch.no_grad():
            student = self.acc.unwrap_model(self.student_w)
            for e, p in zip(self.ema.parameters(), student.parameters()):
                e.lerp_(p, 1 - self.ema_decay)

    def optims(self) -> dict[str, torch.optim.Optimizer]:
        return {"student": self.opt_s, "fake": self.opt_f}

    def prepare(self) -> None:
        self.student_w, self.fake_w, self.heads_w, self.opt_s, self.opt_f = self.acc.prepare(
            self.student, self.fake, self.heads, self.opt_s, self.opt_f
        )
        if self.ema is not None:
            self.ema.to(self.device)

    def step(self, i: int) -> dict[str, float]:
        in_tg = i < self.tg_iters
        batch = self.cfg.trajectory_guidance.batch if in_tg else self.cfg.distribution_matching.batch
        n = self.traj.states.shape[0]
        idx = torch.from_numpy(self.rng.choice(n, size=batch, replace=n < batch))
        return self._tg_step(idx) if in_tg else self._dm_step(i - self.tg_iters, idx)

    def _on(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True)

    def _cond(self, cond: tuple[torch.Tensor, torch.Tensor], idx) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(self._on(c) for c in _pick(cond, idx))  # type: ignore[return-value]

    def _real_score(self):
        """The teacher runs under bfloat16 autocast when it is stored in bfloat16."""
        bf16 = self.cfg.hardware.teacher_dtype == "bfloat16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def _jumps(self, n: int) -> torch.Tensor:
        return torch.from_numpy(self.rng.choice(self.allowed, size=n))

    def _tg_step(self, idx) -> dict[str, float]:
        loss = trajectory_guidance_loss(
            self.student_w,
            self._on(self.traj.states[idx]),
            self._jumps(len(idx)),
            self.traj.timesteps,
            self._cond(self.cond.student, idx),
        )
        self.opt_s.zero_grad(set_to_none=True)
        self.acc.backward(loss)
        self.opt_s.step()
        self._update_ema()
        return {"tg": loss.item()}

    def _real(self, idx, t_cond) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Real samples for the discriminator, each with the conditioning of its own caption.

        Data images are paired with their own captions (a conditional discriminator must not
        see a real image under another sample's prompt, or it rewards ignoring the prompt).
        """
        if self.source is None:
            return self._on(self.traj.states[idx, -1]), t_cond  # the teacher's own samples and prompts
        batch = self.source.sample(self.rng, len(idx))
        x = torch.from_numpy(batch.images).permute(0, 3, 1, 2) * 2 - 1
        vae = self.pipe.vae  # the encoders stay where the pipeline is; their outputs move
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mean
            cond = encode_prompts(self.pipe, batch.captions)
        z = (z - vae.config.shift_factor) * vae.config.scaling_factor
        return self._on(z), (self._on(cond[0]), self._on(cond[1]))

    def _dm_step(self, i: int, idx) -> dict[str, float]:
        cfg, dm = self.cfg, self.cfg.distribution_matching
        ts = self.traj.timesteps
        s_cond, t_cond = self._cond(self.cond.student, idx), self._cond(self.cond.teacher, idx)
        n = len(idx)
        uncond = (self._on(self.cond.uncond[0].expand(n, -1, -1)), self._on(self.cond.uncond[1].expand(n, -1)))
        noise = self._on(torch.randn_like(self.traj.states[idx, 0]))
        out: dict[str, float] = {}
        # Fake score (and discriminator heads): every iteration, on detached student samples.
        with torch.no_grad():
            x0_student = student_sample(self.acc.unwrap_model(self.student_w), noise, ts, s_cond)
        loss_f = fake_score_loss(self.fake_w, x0_student, t_cond, ts, cfg.shift, dm.timestep_sharing)
        out["fake"] = loss_f.item()
        if self.use_gan:
            t = shifted_uniform(n, cfg.shift, device=self.device)
            d_fake = discriminate(self.fake_w, self.heads_w, x0_student, t, t_cond)
            x_real, real_cond = self._real(idx, t_cond)
            d_real = discriminate(self.fake_w, self.heads_w, x_real, t, real_cond)
            loss_d = discriminator_loss(d_fake, d_real)
            loss_f = loss_f + loss_d
            out["disc"] = loss_d.item()
        self.opt_f.zero_grad(set_to_none=True)
        self.acc.backward(loss_f)
        self.opt_f.step()
        if self.use_gan and self.heads.maybe_reinit(dm.gan.reinit_p, self.rng) and self.acc.num_processes > 1:
            for p in self.heads.parameters():
                p.data.copy_(broadcast(p.data, from_process=0))
        if i % dm.critic_ratio:
            return out
        # Generator: the same backward-simulation depth k on every rank.
        k = torch.tensor([int(self.rng.choice(self.allowed))], device=self.device)
        k = int(broadcast(k, from_process=0).item()) if self.acc.num_processes > 1 else int(k.item())
        for group in self.opt_s.param_groups:
            group["lr"] = dm.lr_student
        x, t, x0 = generator_point(self.student_w, noise, k, ts, s_cond, dm.timestep_sharing, cfg.shift)
        with self._real_score():
            g = dm_direction(
                self.acc.unwrap_model(self.fake_w),
                self.teacher,
                x,
                t,
                t_cond,
                uncond,
                cfg.guidance,
                cfg.guidance_interval,
            )
        loss_g = dm_loss(x, g)
        out["dm"] = loss_g.item()
        if self.use_gan and dm.gan.weight > 0:
            fake_net, heads = self.acc.unwrap_model(self.fake_w), self.acc.unwrap_model(self.heads_w)
            t_adv = shifted_uniform(n, cfg.shift, device=self.device)
            adv = generator_adv_loss(discriminate(fake_net, heads, x0, t_adv, t_cond))
            loss_g = loss_g + dm.gan.weight * adv
            out["adv"] = adv.item()
        if dm.regression_weight > 0:
            reg = trajectory_guidance_loss(self.student_w, self._on(self.traj.states[idx]), self._jumps(n), ts, s_cond)
            loss_g = loss_g + dm.regression_weight * reg
            out["tg"] = reg.item()
        self.opt_s.zero_grad(set_to_none=True)
        self.acc.backward(loss_g)
        # logged to compare gradient noise with and without timestep sharing
        grads = [p.grad.detach().float().norm() for p in self.student_w.parameters() if p.grad is not None]
        out["grad_norm"] = float(torch.linalg.vector_norm(torch.stack(grads))) if grads else 0.0
        self.opt_s.step()
        self._update_ema()
        return out


def train_student(
    teacher_pipe,
    traj: Trajectories,
    cfg: FlashConfig,
    work: Path,
    progress: bool = True,
    allowed_steps: list[int] | None = None,
    init: Path | None = None,
    ema: float | None = None,
) -> torch.nn.Module:
    """Run the enabled phases; return the trained student (its EMA when `ema` is set)."""
    run = DistillRun(teacher_pipe, traj, cfg, allowed_steps, init, ema)
    ckpt_root = work / "checkpoints"
    start = run.resume(ckpt_root)
    run.prepare()
    acc = run.acc
    total = run.tg_iters + run.dm_iters
    main = acc.is_main_process
    with open(work / "losses.csv", "a", newline="") if main else contextlib.nullcontext() as log:
        writer = csv.writer(log) if log else None
        bar = tqdm(range(start, total), initial=start, total=total, desc="distill", disable=not (progress and main))
        for i in bar:
            row = run.step(i)
            if writer:
                phase = "tg" if i < run.tg_iters else "dm"
                writer.writerow([i, phase, *(f"{k}={v:.5f}" for k, v in row.items())])
            bar.set_postfix({k: f"{v:.4f}" for k, v in row.items()})
            if (i + 1) % cfg.checkpoint_every == 0 or i + 1 == total:
                if log:
                    log.flush()
                if main:
                    unwrapped = {k: acc.unwrap_model(m) for k, m in run.modules().items()}
                    save_checkpoint(ckpt_root, i + 1, unwrapped, run.optims(), run.rng)
                acc.wait_for_everyone()
    # the student leaves on the CPU in float32, as the rest of the pipeline is (scoring, saving)
    if run.ema is not None:
        return run.ema.to("cpu", torch.float32)
    return acc.unwrap_model(run.student_w).eval().to("cpu", torch.float32)
