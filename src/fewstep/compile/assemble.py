"""The bundle around its components: tokenizers, scheduler config and the typed manifest."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fewstep import __version__
from fewstep.components import TOKENIZER_OF
from fewstep.runtime.bundle import bundle_files
from fewstep.runtime.manifest import (
    BundleManifest,
    ComponentRecord,
    PipelineRecord,
    SourceRecord,
    TokenizerRecord,
    write_manifest_file,
)
from fewstep.sd3_pipeline import encoder_length


def save_tokenizers(pipe, root: Path, components: dict[str, Any]) -> dict[str, TokenizerRecord]:
    """Each kept text encoder's tokenizer under `tokenizers/<encoder>/`."""
    out = {}
    for enc, attr in TOKENIZER_OF.items():
        tok = getattr(pipe, attr, None)
        if enc in components and tok is not None:
            tok.save_pretrained(str(root / "tokenizers" / enc))
            out[enc] = TokenizerRecord(
                path=f"tokenizers/{enc}", max_length=encoder_length(pipe, enc), pad_token=str(tok.pad_token)
            )
    return out


def pipeline_geometry(pipe) -> dict[str, Any]:
    """Latent and text shapes of the pipeline (read before its modules are released)."""
    tcfg = pipe.transformer.config
    return {
        "latent_shape": (tcfg.in_channels, tcfg.sample_size, tcfg.sample_size),
        "image_size": int(pipe.vae_scale_factor * tcfg.sample_size),
        "joint_attention_dim": tcfg.joint_attention_dim,
    }


def pipeline_record(
    geometry: dict[str, Any], sampling, slot: dict[str, Any], components: dict, tokenizers: dict
) -> PipelineRecord:
    return PipelineRecord(
        **geometry,
        **slot,  # the zero T5 slot the runtime feeds without T5 (one null token when collapsed)
        t5="text_encoder_3" in components,
        negative_prompt="",
        tokenizers=tokenizers,
        **sampling.to_json(),
    )


def make_manifest(
    *,
    cfg,
    components: dict[str, ComponentRecord],
    pipeline: PipelineRecord,
    static_batch: int | None,
    plan: dict[str, tuple[str, Any]],
    calibration,
    restructure: dict[str, Any],
    cpu: dict[str, Any] | None,
    source: SourceRecord,
    family: str,
    timings: dict[str, float],
    steps: dict[str, dict[str, str | int]],
) -> BundleManifest:
    scheme = cfg.scheme()
    return BundleManifest(
        fewstep_version=__version__,
        target=cfg.target,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        static_batch=static_batch,
        precision={k: v.precision for k, v in components.items()},
        components=components,
        pipeline=pipeline,
        quantization={
            "scheme": scheme.model_dump(mode="json") if scheme is not None else None,
            "components": {k: s.model_dump(mode="json") for k, (_, s) in plan.items() if s is not None},
            "calibration": calibration.record() if calibration is not None else None,
        },
        restructure=restructure,
        cpu=cpu,
        inference_precision=cfg.inference_precision,
        source=source,
        family=family,
        config=cfg.model_dump(mode="json"),
        build_seconds=timings,
        steps=steps,
    )


def write_manifest(root: Path, manifest: BundleManifest) -> BundleManifest:
    """Hash every file of the bundle into the manifest and write it atomically."""
    manifest = manifest.model_copy(update={"files": bundle_files(root)})
    write_manifest_file(root, manifest)
    return manifest
