"""The bundle manifest as a typed, versioned record: compile writes a `BundleManifest`, and it is
the only thing the runtime reads. A field of the wrong type or an unknown field is an error that
names the field (a manifest is data fewstep wrote; anything else in it was not put there by us).

`Sampling` lives here too: it is what a bundle records of how its pipeline samples (K steps,
guidance, exact sigmas), and what the torch side (`fewstep.sampling`) computes for a pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

FORMAT = "fewstep-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODULATION = "transformer_modulation"  # the hoisted adaLN modulation component (restructure.hoist_modulation)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Sampling(_Record):
    """How a pipeline samples: the runtime integrates `sigmas`; diffusers is called with
    `call_sigmas` (a student's recorded timesteps) or `steps`."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    steps: int
    guidance: float
    call_sigmas: tuple[float, ...] | None = None  # what to pass as `sigmas=` to the diffusers pipeline
    sigmas: tuple[float, ...]  # the scheduler's K + 1 sigmas (ending at 0)
    student: bool
    guidance_interval: tuple[float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


SAMPLING_FIELDS = tuple(Sampling.model_fields)


class TokenizerRecord(_Record):
    path: str  # relative to the bundle: a folder holding tokenizer.json
    max_length: int
    pad_token: str


class PipelineRecord(Sampling):
    """What the runtime needs to run the pipeline around the components: its `Sampling` fields
    (flattened in) plus the latent and text shapes and the tokenizers."""

    latent_shape: tuple[int, int, int]
    image_size: int
    joint_attention_dim: int
    t5_length: int  # tokens in the transformer's T5 slot (its null tokens when the zero slot is collapsed)
    t5_null_tokens: int | None = None  # how many zero tokens those null tokens stand for
    t5: bool
    negative_prompt: str = ""
    tokenizers: dict[str, TokenizerRecord]

    @model_validator(mode="after")
    def _consistent(self) -> PipelineRecord:
        s = self.sigmas
        if self.steps < 1 or len(s) != self.steps + 1:
            raise ValueError(f"sigmas: {len(s)} values for {self.steps} steps; need steps + 1")
        if not (0.0 <= s[-1] <= s[0] <= 1.0) or s[-1] != 0.0 or any(a < b for a, b in zip(s, s[1:])):
            raise ValueError("sigmas: must fall from at most 1 to exactly 0")
        if self.guidance < 0 or min(self.latent_shape) < 1 or self.image_size < 1 or self.t5_length < 1:
            raise ValueError("guidance, latent_shape, image_size and t5_length must be positive")
        if self.t5_null_tokens is not None and not 1 <= self.t5_length <= self.t5_null_tokens:
            raise ValueError(
                f"t5_length: {self.t5_length} null tokens cannot stand for t5_null_tokens = {self.t5_null_tokens}"
            )
        if any(t.max_length < 1 for t in self.tokenizers.values()):
            raise ValueError("tokenizers: max_length must be positive")
        return self

    @property
    def sampling(self) -> Sampling:
        return Sampling(**{k: getattr(self, k) for k in SAMPLING_FIELDS})


class TensorRecord(_Record):
    name: str = Field(min_length=1)
    shape: list[int | str]  # ints, or axis names (dynamic axes such as "batch")
    dtype: str = "float32"


class IORecord(_Record):
    """A component's interface as exported (targets.base.ComponentIO.to_json())."""

    name: str = Field(min_length=1)
    inputs: list[TensorRecord] = Field(min_length=1)
    outputs: list[str] = Field(min_length=1)
    static_sizes: dict[str, int] = {}


class ComponentRecord(_Record):
    io: IORecord
    files: list[str] = Field(min_length=1)  # relative to components/ (to the bundle with `layout`)
    precision: str
    # "openvino" / "onnx": the files are the ecosystem layout's `<name>/openvino_model.xml` (read by
    # optimum-intel and OpenVINO GenAI too) or `<name>/model.onnx` (optimum's ONNX Runtime pipelines);
    # runtime/layout.py adapts their interface
    layout: Literal["openvino", "onnx"] | None = None
    # the float arithmetic this component runs in where it is not the bundle's (the hoisted modulation
    # runs at f32: a few rows, bound by reading its weights, which f32 does faster than bf16 here)
    inference_precision: Literal["f32", "bf16"] | None = None
    # the transformer's: where its exported attentions split their heads off (compile's
    # attention_layout; fewstep/joint_attention.py); None for components without attention
    # and bundles built before the choice existed (diffusers' "heads")
    attention_layout: Literal["heads", "tokens", "keys"] | None = None


class SourceRecord(_Record):
    model: str  # what the user named (zoo:<name> or a path)
    path: str  # the diffusers directory it resolved to on the build machine
    digest: str  # tree digest of that directory: a gate trusts a reference only if it matches


class CpuRecord(_Record):
    mode: str
    isa: list[str]
    built_on: str | None
    int8_full_range: list[str]
    requires: list[str]


class BundleManifest(_Record):
    format: Literal["fewstep-bundle"] = FORMAT
    format_version: int = FORMAT_VERSION
    fewstep_version: str
    target: str
    created: str
    static_batch: int | None = None
    precision: dict[str, str]
    components: dict[str, ComponentRecord]
    pipeline: PipelineRecord
    quantization: dict[str, Any] | None = None
    restructure: dict[str, Any] | None = None
    cpu: CpuRecord | None = None
    # the runtime's float arithmetic (the target's `inference_precisions`); gates measured it
    inference_precision: Literal["f32", "bf16"] = "f32"
    source: SourceRecord
    family: str | None = None
    config: dict[str, Any]
    build_seconds: dict[str, float] = {}
    # per component: export / quantize ran or reused; `calibration_crop`: the latent side the
    # quantizers were calibrated on, where smaller than the component's (quantize/spatial.py)
    steps: dict[str, dict[str, str | int]] = {}
    gates: dict[str, Any] | None = None
    files: dict[str, str] = {}  # sha256 of every file but the manifest, by relative path

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ManifestError(ValueError):
    """A manifest that does not parse as this fewstep's BundleManifest."""


def parse_manifest(data: Any, where: Path | str) -> BundleManifest:
    """A BundleManifest from JSON data; errors name the field (format and version checked first)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ManifestError(f"{where}: not a fewstep bundle manifest")
    version = data.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ManifestError(f"{where}: format_version {version!r} is not an integer")
    if version > FORMAT_VERSION:
        raise ManifestError(f"{where}: bundle format {version} is newer than this fewstep reads ({FORMAT_VERSION})")
    try:
        return BundleManifest.model_validate(data)
    except ValidationError as e:
        bad = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()[:6])
        raise ManifestError(f"{where}: {bad}; rebuild the bundle") from None


def load_manifest_file(path: Path) -> BundleManifest:
    try:
        data = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: not valid JSON ({e})") from None
    return parse_manifest(data, path)


def write_manifest_file(root: Path, manifest: BundleManifest) -> None:
    """Write `root/manifest.json` atomically."""
    tmp = Path(root) / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest.to_json(), indent=2))
    tmp.replace(Path(root) / MANIFEST)
