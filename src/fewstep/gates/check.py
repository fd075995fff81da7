"""Run the gates of a bundle against the torch pipeline it was built from.

- tensor: each bundle component on the torch run's own inputs (token ids, the transformer's
  inputs at every sampling step, the final latents) vs the torch component;
- image: end-to-end bundle images vs the diffusers pipeline's, same prompts and noise;
- distribution: domain FID and alignment of bundle vs torch images (families with an evaluator).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fewstep.components import MODULATION, TOKENIZER_OF, pipeline_components, torch_outputs
from fewstep.families import Evaluation, StandardMetrics, evaluation_with, family_for
from fewstep.gates import metrics
from fewstep.gates.config import GateConfig, GateResult
from fewstep.runtime.bundle import Bundle
from fewstep.runtime.noise import initial_noise
from fewstep.runtime.sampler import guided, sample
from fewstep.sampling import GenerationConfig, Sampling, generate
from fewstep.sd3_pipeline import encoder_length

F32Twin = Callable[[str], Bundle]  # component name -> the bundle with that component opened at f32


def gate_evaluation(model_dir: Path, metrics: StandardMetrics | None = None) -> Evaluation | None:
    """What scores the gate images: the configured standard metrics, else the family's evaluator."""
    return evaluation_with(family_for(model_dir), metrics, model_dir)


def gate_prompts(model_dir: Path, n: int, metrics: StandardMetrics | None = None) -> tuple[list[str], list | None]:
    """The held-out prompts (with their specs when there is an evaluation)."""
    evaluation = gate_evaluation(model_dir, metrics)
    if evaluation is not None:
        return evaluation.held_out(n)
    return family_for(model_dir).held_out_prompts(n, model_dir), None


def has_evaluator(model_dir: Path, metrics: StandardMetrics | None = None) -> bool:
    return gate_evaluation(model_dir, metrics) is not None


# a bf16 run whose distance from torch (1 - cosine) is within this factor of its f32 twin's is
# "as close to torch" (the 512 px int8 VAE decoder: 1.01; the rounded timestep at 512 px: about 6,
# against the fixed bundle's error at bf16)
TWIN_ERROR_RATIO = 1.25


@dataclass
class GateReport:
    results: list[GateResult] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def failures(self) -> list[GateResult]:
        return [r for r in self.results if not r.passed]

    def advice(self) -> list[str]:
        """For each failed `cosine_vs_f32`, what its recorded `f32_twin_cosine` says: the bundle's
        run farther from torch than its f32 twin (the arithmetic is off), or as far (quantized
        activations rounding to other int8 levels; running that component at f32 passes)."""
        values = {r.gate: r.value for r in self.results}
        lines = []
        for r in self.failures():
            where = r.gate.removesuffix("/cosine_vs_f32")
            own, twin = values.get(f"{where}/cosine"), values.get(f"{where}/f32_twin_cosine")
            if where == r.gate or own is None or twin is None:
                continue
            component = where.split(":", 1)[-1].split("/")[1].split("@")[0]
            if 1 - own <= TWIN_ERROR_RATIO * (1 - twin):
                lines.append(
                    f"{where}: as close to torch as its f32 twin ({own:.5f} vs {twin:.5f}), "
                    "so the two runs differ where quantized activations round to other int8 levels, not in a wrong "
                    f"result; `component_inference_precision: {{{component}: f32}}` runs it at f32"
                )
            else:
                lines.append(
                    f"{where}: farther from torch than its f32 twin ({own:.5f} vs {twin:.5f}): the bf16 arithmetic "
                    f"is off here; `component_inference_precision: {{{component}: f32}}` avoids it"
                )
        return lines

    def to_json(self) -> dict[str, Any]:
        extra = {k: v for k, v in self.extra.items() if k != "images"}  # arrays stay out of JSON
        return {"passed": self.passed, "results": [r.to_json() for r in self.results], **extra}


def _token_ids(pipe, name: str, prompts: list[str]) -> np.ndarray:
    tok = getattr(pipe, TOKENIZER_OF[name])
    length = encoder_length(pipe, name)
    ids = tok(prompts, padding="max_length", max_length=length, truncation=True, return_tensors="np").input_ids
    return ids.astype(np.int64)


def reference_inputs(
    pipe, prompts: list[str], sampling: Sampling, seed: int, comps: dict | None = None
) -> dict[str, list[dict]]:
    """Every component's inputs along the torch pipeline's own sampling run."""
    from fewstep.sd3_pipeline import encode_prompts

    comps = comps or pipeline_components(pipe)
    inputs: dict[str, list[dict]] = defaultdict(list)
    for name in ("text_encoder", "text_encoder_2", "text_encoder_3"):
        if name in comps:
            inputs[name].append({"input_ids": _token_ids(pipe, name, prompts)})
    transformer, modulation = comps["transformer"], comps.get(MODULATION)
    example = {spec.name: x for spec, x in zip(transformer.io.inputs, transformer.example)}
    seq = example["encoder_hidden_states"].shape[1]  # shorter than the pipeline's when the zero T5 slot is collapsed

    def conditioning(texts: list[str]) -> dict[str, np.ndarray]:
        embeds, pooled = (t.numpy() for t in encode_prompts(pipe, texts))
        return {"encoder_hidden_states": np.ascontiguousarray(embeds[:, :seq]), "pooled_projections": pooled}

    cond = conditioning(prompts)
    uncond = conditioning([""] * len(prompts)) if sampling.guidance > 1.0 else None

    def velocity(x, t, c):
        if modulation is None:
            feeds = {"hidden_states": x, "timestep": t, **c}
        else:  # hoisted: the modulation component's output is the transformer's input
            conditioning = {"timestep": t, "pooled_projections": c["pooled_projections"]}
            inputs[MODULATION].append(conditioning)
            adaln = torch_outputs(modulation, conditioning)["modulation"]
            feeds = {"hidden_states": x, "encoder_hidden_states": c["encoder_hidden_states"], "modulation": adaln}
        inputs["transformer"].append(feeds)
        return torch_outputs(transformer, feeds)["sample"]

    shape = tuple(example["hidden_states"].shape[1:])
    step = guided(velocity, sampling.guidance, sampling.guidance_interval)
    x = sample(initial_noise(seed, len(prompts), shape), sampling.sigmas, lambda x, t: step(x, t, cond, uncond))
    inputs["vae_decoder"].append({"latents": x})
    return dict(inputs)


def tensor_gates(
    bundle: Bundle, pipe, prompts: list[str], sampling: Sampling, cfg: GateConfig, f32_twin: F32Twin | None = None
) -> list[GateResult]:
    """Each component vs torch on the gate inputs; with `f32_twin` (component name -> the bundle with
    that component opened at f32) each output at the bundle's own precision against it too
    (`cosine_vs_f32`), and the twin's output against torch, recorded (`f32_twin_cosine`)."""
    collapsed = bundle.pipeline.t5_null_tokens is not None  # then t5_length is its null-token count
    slots = bundle.pipeline.t5_length if collapsed else 1
    comps = pipeline_components(pipe, collapse_null=collapsed, null_slots=slots, hoist_modulation=bundle.hoisted)
    g = cfg.tensor
    results = []
    inputs = reference_inputs(pipe, prompts, sampling, cfg.seed, comps)
    timesteps = [float(f["timestep"][0]) / 1000 for f in inputs.get(MODULATION) or inputs["transformer"]]
    for name, feeds_list in inputs.items():
        if name not in bundle.sessions:
            continue
        at_f32 = bundle.manifest.components[name].inference_precision == "f32"  # its own twin already
        twin_bundle = f32_twin(name) if f32_twin is not None and not at_f32 else None  # released after it
        for i, feeds in enumerate(feeds_list):
            ref = torch_outputs(comps[name], feeds)
            out = bundle.run_component(name, feeds)
            twin = twin_bundle.run_component(name, feeds) if twin_bundle is not None else None
            where = name
            if name in ("transformer", MODULATION):  # one call per sampling step
                where = f"{name}@t={timesteps[i]:.3f}"
            for key in comps[name].io.outputs:
                label = f"tensor/{where}/{key}" if len(comps[name].io.outputs) > 1 else f"tensor/{where}"
                results.append(
                    GateResult.check(f"{label}/cosine", metrics.cosine(out[key], ref[key]), g.cosine_min, ">=")
                )
                results.append(
                    GateResult.check(f"{label}/rel_l2", metrics.relative_l2(out[key], ref[key]), g.rel_l2_max, "<=")
                )
                results.append(
                    GateResult.check(f"{label}/max_abs", metrics.max_abs(out[key], ref[key]), g.max_abs_max, "<=")
                )
                if twin is not None:
                    value = metrics.cosine(out[key], twin[key])
                    results.append(GateResult.check(f"{label}/cosine_vs_f32", value, g.vs_f32_cosine_min, ">="))
                    # recorded: where cosine_vs_f32 fails, whether the bundle's run is farther from
                    # torch than its f32 twin (the arithmetic costs accuracy) or as far (for
                    # quantized activations the two runs round to different int8 levels)
                    value = metrics.cosine(twin[key], ref[key])
                    results.append(GateResult.check(f"{label}/f32_twin_cosine", value, None, ">="))
    return results


def torch_images(pipe, prompts: list[str], sampling: Sampling, seed: int, batch: int = 200) -> np.ndarray:
    """The diffusers pipeline's images for the same prompts and noise as the bundle's."""
    cfg = GenerationConfig(
        steps=sampling.steps,
        seed=seed,
        guidance=sampling.guidance,
        sigmas=sampling.call_sigmas,
        batch=batch,
        progress=False,
        guidance_interval=sampling.guidance_interval,
    )
    return generate(pipe, prompts, cfg)


def image_gates(bundle_images: np.ndarray, reference: np.ndarray, cfg: GateConfig) -> list[GateResult]:
    g = cfg.image
    results = [
        GateResult.check("image/psnr", metrics.psnr(bundle_images, reference), g.psnr_min, ">="),
        GateResult.check("image/ssim", metrics.ssim(bundle_images, reference), g.ssim_min, ">="),
    ]
    if g.lpips_network is not None:
        from fewstep.families.standard import LpipsNetwork

        distance = float(LpipsNetwork(g.lpips_network)(bundle_images, reference).mean())
        results.append(GateResult.check("image/lpips", distance, g.lpips_max, "<="))
    return results


def distribution_gates(
    bundle: Bundle, pipe, model_dir: Path, sampling: Sampling, cfg: GateConfig
) -> tuple[list[GateResult], dict]:
    g = cfg.distribution
    evaluation = gate_evaluation(model_dir, g.metrics)
    if evaluation is None:
        raise ValueError(
            f"distribution gates need an evaluator; the {family_for(model_dir).name!r} family has none "
            "(give gates.distribution.metrics: a reference image folder and local FID / CLIP networks)"
        )
    prompts, specs = evaluation.held_out(g.num_images)
    ref = evaluation.score(torch_images(pipe, prompts, sampling, cfg.seed), specs)
    got = evaluation.score(bundle.generate(prompts, seed=cfg.seed), specs)
    ratio = got["fid"] / max(ref["fid"], 1e-9)
    drop = ref["alignment"] - got["alignment"]
    results = [
        GateResult.check("distribution/fid_ratio", ratio, g.fid_ratio_max, "<="),
        GateResult.check("distribution/alignment_drop", drop, g.alignment_drop_max, "<="),
    ]
    keep = ("fid", "fid_real", "alignment", "per_category", *(("clip_score",) if "clip_score" in got else ()))
    return results, {"torch": {k: ref[k] for k in keep}, "bundle": {k: got[k] for k in keep}, "images": len(specs)}


@torch.no_grad()
def run_gates(
    bundle: Bundle, pipe, model_dir: Path, sampling: Sampling, cfg: GateConfig, f32_twin: F32Twin | None = None
) -> GateReport:
    """All gates; the report keeps the image pairs' metrics and the distribution numbers. `f32_twin`
    opens a component of the same bundle at f32, for the `cosine_vs_f32` gates of a bundle whose
    precision is not f32."""
    prompts, _ = gate_prompts(model_dir, cfg.num_prompts, cfg.distribution.metrics)
    report = GateReport()
    report.results += tensor_gates(bundle, pipe, prompts, sampling, cfg, f32_twin)
    reference = torch_images(pipe, prompts, sampling, cfg.seed)
    images = bundle.generate(prompts, seed=cfg.seed)
    report.results += image_gates(images, reference, cfg)
    report.extra["images"] = {"torch": reference, "bundle": images, "prompts": prompts}
    enabled = cfg.distribution.enabled
    if enabled is None:
        enabled = has_evaluator(model_dir, cfg.distribution.metrics)
    if enabled:
        results, numbers = distribution_gates(bundle, pipe, model_dir, sampling, cfg)
        report.results += results
        report.extra["distribution"] = numbers
    return report
