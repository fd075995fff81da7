"""Text-encoder restructuring, gated: a change is applied only if its gate passes.

Dropping T5: the T5-free torch model (zero-filled slot, as SD3 was trained to accept) is
compared with the full one on held-out prompts (alignment drop, domain-FID ratio); if it is
within the thresholds the bundle omits T5, otherwise the change is refused and recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fewstep.compile.config import Restructure


def _t5_bytes(pipe) -> int:
    return sum(p.numel() * p.element_size() for p in pipe.text_encoder_3.parameters())


def drop_t5(pipe, model_dir: Path, sampling, cfg: Restructure) -> dict[str, Any]:
    from fewstep.gates.check import has_evaluator, torch_images

    if pipe.text_encoder_3 is None:
        return {"accepted": True, "reason": "the model has no T5"}
    saved = _t5_bytes(pipe)
    record: dict[str, Any] = {"t5_parameter_bytes": saved}
    if cfg.force:
        record.update(accepted=True, reason="forced (no gate)")
    elif not has_evaluator(model_dir):
        record.update(
            accepted=False, reason="no evaluator for this model family; set restructure.force to drop ungated"
        )
    else:
        from fewstep.zoo import shapes_data as sd
        from fewstep.zoo.evaluate import score

        gate = cfg.t5_gate
        specs = sd.eval_prompts(gate.num_images)
        prompts = [sd.caption(s) for s in specs]
        full = score(torch_images(pipe, prompts, sampling, 0), specs)
        t5, tok = pipe.text_encoder_3, pipe.tokenizer_3
        pipe.text_encoder_3, pipe.tokenizer_3 = None, None
        free = score(torch_images(pipe, prompts, sampling, 0), specs)
        pipe.text_encoder_3, pipe.tokenizer_3 = t5, tok
        drop = full["alignment"] - free["alignment"]
        ratio = free["fid"] / max(full["fid"], 1e-9)
        accepted = drop <= gate.alignment_drop_max and ratio <= gate.fid_ratio_max
        record.update(
            accepted=accepted,
            images=gate.num_images,
            alignment_with_t5=full["alignment"],
            alignment_without_t5=free["alignment"],
            alignment_drop=drop,
            fid_with_t5=full["fid"],
            fid_without_t5=free["fid"],
            fid_ratio=ratio,
            reason=(
                "within the gate"
                if accepted
                else f"refused: alignment drop {drop:.3f} (max {gate.alignment_drop_max}) or FID ratio "
                f"{ratio:.3f} (max {gate.fid_ratio_max})"
            ),
        )
    if record["accepted"]:
        pipe.text_encoder_3, pipe.tokenizer_3 = None, None
    return record


def apply_restructure(pipe, model_dir: Path, sampling, cfg: Restructure) -> dict[str, Any]:
    """Apply the requested restructurings that pass their gates; return what happened."""
    record: dict[str, Any] = {}
    if cfg.drop_t5:
        record["drop_t5"] = drop_t5(pipe, model_dir, sampling, cfg)
    return record
