"""Open a bundle (verifying every file's sha256) and generate images with its target runtime.

Layout of a bundle directory:
    manifest.json            what made it, per-component precision and I/O, sigmas, hashes, gates
    components/<name>.*      the target's files (ONNX, OpenVINO IR, ...)
    tokenizers/<name>/       tokenizer.json per text encoder
    scheduler/               the diffusers scheduler config (for reference)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fewstep.runtime.cpu_check import check_cpu, cpu_problem
from fewstep.runtime.integrity import BundleError, bundle_files, is_bundle, read_manifest, verify
from fewstep.runtime.layout import adapted, component_folder
from fewstep.runtime.manifest import MODULATION, BundleManifest, PipelineRecord
from fewstep.runtime.noise import initial_noise
from fewstep.runtime.sampler import guided, sample, step_timesteps
from fewstep.runtime.signing import TRUSTED_KEYS_ENV
from fewstep.runtime.text import PromptTokenizer, TokenizerSpec

__all__ = [
    "Bundle",
    "BundleError",
    "bundle_files",
    "cpu_problem",
    "is_bundle",
    "read_manifest",
    "save_png",
]


CLIP = ("text_encoder", "text_encoder_2")
T5 = "text_encoder_3"


def load_tokenizers(root: Path, manifest: BundleManifest) -> dict[str, PromptTokenizer]:
    return {
        name: PromptTokenizer(root / spec.path, TokenizerSpec(**spec.model_dump()))
        for name, spec in manifest.pipeline.tokenizers.items()
    }


def _target_of(root: Path, manifest: BundleManifest):
    """The registered target the manifest names (an unknown or broken one is a BundleError)."""
    from fewstep.targets.registry import get_target

    try:
        return get_target(manifest.target)
    except (ValueError, RuntimeError) as e:
        raise BundleError(f"{root / 'manifest.json'}: target: {e}") from None


@dataclass
class Bundle:
    """A loaded bundle: call `generate` for images (N, H, W, 3) float32 in [0, 1]."""

    root: Path
    manifest: BundleManifest
    sessions: dict[str, Any]
    tokenizers: dict[str, PromptTokenizer]

    @classmethod
    def open(
        cls,
        path: str | Path,
        check: bool = True,
        threads: int | None = None,
        allow_isa_mismatch: bool = False,
        trusted_keys: Sequence[Path] | None = None,
        inference_precision: str | None = None,
        components: Sequence[str] | None = None,
    ) -> Bundle:
        """Open (hash-check, and with `trusted_keys` or FEWSTEP_TRUSTED_KEYS signature-check) a bundle.
        `inference_precision` overrides the manifest's (e.g. a bf16 bundle run at f32, as its gates
        check it); it must be one the target runs. `components`: load only these (`run_component`
        of those; the gates' f32 twin holds one at a time)."""
        from fewstep.targets.base import ComponentIO

        root = Path(path)
        manifest = read_manifest(root, check, trusted_keys)
        target = _target_of(root, manifest)
        check_cpu(root, manifest, target, allow_isa_mismatch)
        wanted = inference_precision or manifest.inference_precision
        if wanted not in target.inference_precisions:
            field = "inference_precision" if inference_precision else "its inference_precision"
            raise BundleError(
                f"bundle {root}: {field} {wanted!r} is not one {target.name} "
                f"runs; allowed: {', '.join(target.inference_precisions)}"
            )
        unknown = sorted(set(components or ()) - set(manifest.components))
        if unknown:
            have = ", ".join(manifest.components)
            raise BundleError(f"bundle {root}: no component {', '.join(unknown)}; it has {have}")
        sessions = {}
        for name, comp in manifest.components.items():
            if components is not None and name not in components:
                continue
            io = ComponentIO.from_json(comp.io.model_dump())
            own = inference_precision or comp.inference_precision or wanted  # a component may keep f32
            # only a precision beyond the default is passed: targets written before the argument keep working
            precision = {} if own == "f32" else {"inference_precision": own}
            try:
                session = target.load(component_folder(root, comp.layout), comp.files, io, threads=threads, **precision)
                sessions[name] = adapted(name, session, comp.layout)
            except (BundleError, ImportError):
                raise
            except Exception as e:  # the runtime's own error for a file it cannot read
                raise BundleError(
                    f"bundle {root}: {target.name} cannot load component {name} ({', '.join(comp.files)}): "
                    f"{type(e).__name__}: {str(e)[:200]}"
                ) from None
        return cls(root, manifest, sessions, load_tokenizers(root, manifest))

    @classmethod
    def open_restricted(
        cls, path: str | Path, isa: str, threads: int | None = None, trusted_keys: Sequence[Path] | None = None
    ) -> tuple[Bundle, Any]:
        """The bundle with its components run as a CPU of `isa` would (see `restrict.py`); the
        second value is the worker (`.restriction`, `.saturates`, `.close()`)."""
        from fewstep.cpu.restriction import restriction_for
        from fewstep.runtime.restrict import RemoteSession, RestrictedRuntime, check_in_force

        root = Path(path)
        manifest = read_manifest(root, False, trusted_keys)  # paths checked; hashes once, below or in `open`
        target = _target_of(root, manifest)
        restriction = restriction_for(target, isa)
        if restriction.how == "native":
            return cls.open(root, threads=threads, allow_isa_mismatch=True, trusted_keys=trusted_keys), None
        verify(root, manifest)
        env = {TRUSTED_KEYS_ENV: os.pathsep.join(str(k) for k in trusted_keys)} if trusted_keys else None
        runtime = RestrictedRuntime(root, restriction, threads, env)  # the worker checks the signature too
        check_in_force(runtime, target.name)
        sessions = {name: RemoteSession(runtime, name) for name in manifest.components}
        return cls(root, manifest, sessions, load_tokenizers(root, manifest)), runtime

    # -- pipeline pieces -------------------------------------------------------------
    @property
    def pipeline(self) -> PipelineRecord:
        return self.manifest.pipeline

    @property
    def static_batch(self) -> int | None:
        return self.manifest.static_batch

    def run_component(self, name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run a component, chunking/padding the batch to a static bundle's fixed size."""
        session = self.sessions[name]
        n = next(iter(feeds.values())).shape[0]
        size = self.manifest.components[name].io.static_sizes.get("batch")
        if not size or size == n:
            out = session.run(feeds)
        else:
            parts = []
            for i in range(0, n, size):
                chunk = {k: v[i : i + size] for k, v in feeds.items()}
                m = next(iter(chunk.values())).shape[0]
                if m < size:
                    chunk = {k: np.concatenate([v, np.repeat(v[-1:], size - m, 0)]) for k, v in chunk.items()}
                parts.append({k: v[:m] for k, v in session.run(chunk).items()})
            out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        for k, v in out.items():
            if not np.isfinite(v).all():
                raise FloatingPointError(f"{name}: output {k!r} contains NaN or Inf")
        return out

    def encode(self, prompts: list[str]) -> dict[str, np.ndarray]:
        """(encoder_hidden_states, pooled_projections) as StableDiffusion3Pipeline builds them."""
        p = self.pipeline
        hidden, pooled = [], []
        for name in CLIP:
            out = self.run_component(name, {"input_ids": self.tokenizers[name](prompts)})
            hidden.append(out["hidden_states"])
            pooled.append(out["text_embeds"])
        clip = np.concatenate(hidden, -1)
        width = p.joint_attention_dim
        clip = np.pad(clip, ((0, 0), (0, 0), (0, width - clip.shape[-1])))
        if T5 in self.sessions:
            t5 = self.run_component(T5, {"input_ids": self.tokenizers[T5](prompts)})["hidden_states"]
        else:  # T5 dropped: the slot is zero-filled, as diffusers does without text_encoder_3
            t5 = np.zeros((len(prompts), p.t5_length, width), np.float32)
        return {
            "encoder_hidden_states": np.concatenate([clip, t5], 1).astype(np.float32),
            "pooled_projections": np.concatenate(pooled, -1).astype(np.float32),
        }

    @property
    def hoisted(self) -> bool:
        """Whether the transformer's adaLN modulation is its own component (`transformer_modulation`,
        restructure.hoist_modulation): computed for every step at once, fed to each step."""
        return MODULATION in self.manifest.components

    def timesteps(self) -> list[float]:
        """The transformer's timestep at each step, as the sampler computes it."""
        return [float(t) for t in step_timesteps(self.pipeline.sigmas)]

    def condition(self, cond: dict[str, np.ndarray], timesteps: Sequence[float] | None = None) -> dict[str, np.ndarray]:
        """`cond` with, in a hoisted bundle, the modulation of every step (default: the bundle's own
        timesteps), computed in one call: `modulation` (n, steps, width) and `modulation_t`
        (n, steps); `velocity` picks its step's. Other bundles: `cond` unchanged."""
        if not self.hoisted:
            return cond
        steps = np.asarray(self.timesteps() if timesteps is None else timesteps, np.float32)
        pooled = cond["pooled_projections"]
        n, k = len(pooled), len(steps)
        feeds = {"timestep": np.repeat(steps, n), "pooled_projections": np.tile(pooled, (k, 1))}  # step-major rows
        table = self.run_component(MODULATION, feeds)["modulation"]
        return {
            **cond,
            "modulation": np.ascontiguousarray(table.reshape(k, n, -1).transpose(1, 0, 2)),
            "modulation_t": np.tile(steps, (n, 1)),
        }

    def velocity(self, x: np.ndarray, t: np.ndarray, cond: dict[str, np.ndarray]) -> np.ndarray:
        """The transformer's velocity at timesteps `t` (one value for the batch in a hoisted bundle)."""
        if not self.hoisted:
            return self.run_component("transformer", {"hidden_states": x, "timestep": t, **cond})["sample"]
        found = np.flatnonzero(cond["modulation_t"][0] == np.float32(t[0])) if "modulation" in cond else []
        if len(found):
            modulation = cond["modulation"][:, found[0]]
        else:  # a timestep `condition` did not cover: this step's modulation alone
            feeds = {"timestep": t, "pooled_projections": cond["pooled_projections"]}
            modulation = self.run_component(MODULATION, feeds)["modulation"]
        feeds = {"hidden_states": x, "encoder_hidden_states": cond["encoder_hidden_states"], "modulation": modulation}
        return self.run_component("transformer", feeds)["sample"]

    def decode(self, latents: np.ndarray) -> np.ndarray:
        image = self.run_component("vae_decoder", {"latents": latents})["image"]
        return np.clip(image.transpose(0, 2, 3, 1), 0.0, 1.0)

    def generate(
        self,
        prompts: list[str] | str,
        seed: int = 0,
        num_images: int | None = None,
        latents: np.ndarray | None = None,
        batch: int = 64,
    ) -> np.ndarray:
        """Images for `prompts` (a prompt is repeated to `num_images`); image i is seeded seed + i."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if num_images is not None:
            prompts = [prompts[i % len(prompts)] for i in range(num_images)]
        p = self.pipeline
        if latents is None:
            latents = initial_noise(seed, len(prompts), p.latent_shape)
        fn = guided(self.velocity, p.guidance, p.guidance_interval)
        uncond = self.condition(self.encode([p.negative_prompt])) if p.guidance > 1.0 else None
        out = []
        for i in range(0, len(prompts), batch):
            cond = self.condition(self.encode(prompts[i : i + batch]))
            n = len(cond["pooled_projections"])
            un = {k: np.repeat(v, n, 0) for k, v in uncond.items()} if uncond else None
            x = sample(latents[i : i + batch], list(p.sigmas), lambda x, t, c=cond, u=un: fn(x, t, c, u))
            out.append(self.decode(x))
        return np.concatenate(out)


def save_png(images: np.ndarray, path: str | Path) -> list[Path]:
    """Write images (N, H, W, 3) in [0, 1]; several images get -0, -1, ... suffixes. Each file is
    written atomically; a path that is a directory is refused before anything is written."""
    from PIL import Image

    path = Path(path)
    paths = (
        [path] if len(images) == 1 else [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(len(images))]
    )
    for p in paths:
        if p.is_dir():
            raise IsADirectoryError(f"{p} is a directory; give a file name such as {p / 'image.png'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    for im, p in zip(images, paths):
        tmp = p.with_name(f".{p.name}.tmp")
        try:
            Image.fromarray((np.clip(im, 0, 1) * 255).round().astype(np.uint8)).save(tmp, format="PNG")
            tmp.replace(p)
        finally:
            tmp.unlink(missing_ok=True)
    return paths
