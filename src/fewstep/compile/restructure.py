"""Text-encoder restructuring, gated: a change is applied only if its gate passes.

Each candidate change (drop T5; keep only the first N layers of an encoder, fine-tuned by
feature matching) is scored on held-out prompts against the unchanged torch model
(alignment drop, domain-FID ratio). Within `t5_gate` it is applied and the bundle is built
from the changed model; otherwise it is refused and the reason recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fewstep.compile.config import Restructure
from fewstep.components import TOKENIZER_OF
from fewstep.sd3_pipeline import encoder_length


def _bytes(module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def gate_change(pipe, model_dir: Path, sampling, cfg: Restructure, apply: Callable, revert: Callable) -> dict[str, Any]:
    """Score the model with and without a change; leave it applied only if the gate passes."""
    from fewstep.families import family_for
    from fewstep.gates.check import torch_images

    if cfg.force:
        apply()
        return {"accepted": True, "reason": "forced (no gate)"}
    family = family_for(model_dir)
    evaluation = family.evaluation(model_dir)
    if evaluation is None:
        reason = f"the {family.name!r} family has no evaluator; set restructure.force to apply ungated"
        return {"accepted": False, "reason": reason}
    gate = cfg.t5_gate
    prompts, specs = evaluation.held_out(gate.num_images)
    before = evaluation.score(torch_images(pipe, prompts, sampling, 0), specs)
    apply()
    after = evaluation.score(torch_images(pipe, prompts, sampling, 0), specs)
    drop = before["alignment"] - after["alignment"]
    ratio = after["fid"] / max(before["fid"], 1e-9)
    accepted = drop <= gate.alignment_drop_max + 1e-9 and ratio <= gate.fid_ratio_max
    if not accepted:
        revert()
    reason = (
        "within the gate"
        if accepted
        else (
            f"refused: alignment drop {drop:.3f} (max {gate.alignment_drop_max}) or FID ratio {ratio:.3f} "
            f"(max {gate.fid_ratio_max})"
        )
    )
    return {
        "accepted": accepted,
        "images": gate.num_images,
        "alignment_before": before["alignment"],
        "alignment_after": after["alignment"],
        "alignment_drop": drop,
        "fid_before": before["fid"],
        "fid_after": after["fid"],
        "fid_ratio": ratio,
        "reason": reason,
    }


def drop_t5(pipe, model_dir: Path, sampling, cfg: Restructure) -> dict[str, Any]:
    if pipe.text_encoder_3 is None:
        return {"accepted": True, "reason": "the model has no T5"}
    t5, tok = pipe.text_encoder_3, pipe.tokenizer_3
    record: dict[str, Any] = {"t5_parameter_bytes": _bytes(t5)}

    def apply():
        pipe.text_encoder_3, pipe.tokenizer_3 = None, None

    def revert():
        pipe.text_encoder_3, pipe.tokenizer_3 = t5, tok

    record.update(gate_change(pipe, model_dir, sampling, cfg, apply, revert))
    return record


def truncate_encoders(pipe, model_dir: Path, sampling, cfg: Restructure) -> dict[str, Any]:
    """Shorten each requested encoder, fine-tune it by feature matching, keep it if gated in."""
    from fewstep.compile.truncate import feature_match, layer_list, truncated
    from fewstep.quantize.calibration import calibration_prompts

    t = cfg.truncate
    prompts = calibration_prompts(model_dir, t.prompts, seed=7)  # training prompts, never gate prompts
    records: dict[str, Any] = {}
    for name, keep in t.keep.items():
        full = getattr(pipe, name, None)
        if full is None:
            records[name] = {"accepted": False, "reason": "the model has no such encoder"}
            continue
        tok = getattr(pipe, TOKENIZER_OF[name])
        length = encoder_length(pipe, name)
        batches = [
            tok(
                prompts[i : i + t.batch], padding="max_length", max_length=length, truncation=True, return_tensors="pt"
            ).input_ids
            for i in range(0, len(prompts), t.batch)
        ]
        torch.manual_seed(0)
        short = truncated(full, keep)
        losses = feature_match(short, full, batches, t.steps, t.lr)
        short.eval().requires_grad_(False)
        record: dict[str, Any] = {
            "layers": [len(layer_list(full)), keep],
            "parameter_bytes_saved": _bytes(full) - _bytes(short),
            "fine_tune_steps": t.steps,
            "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None,
        }
        record.update(
            gate_change(
                pipe,
                model_dir,
                sampling,
                cfg,
                lambda n=name, s=short: setattr(pipe, n, s),
                lambda n=name, f=full: setattr(pipe, n, f),
            )
        )
        records[name] = record
    return records


def apply_restructure(pipe, model_dir: Path, sampling, cfg: Restructure) -> dict[str, Any]:
    """Apply the requested restructurings that pass their gates; return what happened."""
    record: dict[str, Any] = {}
    if cfg.truncate.keep:
        record["truncate"] = truncate_encoders(pipe, model_dir, sampling, cfg)
    if cfg.drop_t5:
        record["drop_t5"] = drop_t5(pipe, model_dir, sampling, cfg)
    return record
