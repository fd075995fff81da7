"""The target contract: what a deployment backend declares and the hooks it implements.

A target consumes a component exported to `export_format` (ONNX for the built-ins), turns
it into its own deployable files at a precision (`build`), and runs them (`load` returns a
`Session`: numpy in, numpy out). Vendor SDKs are imported inside the hooks only, so listing
targets never imports them. Third-party targets register the same way as the built-ins,
through the `fewstep.targets` entry-point group.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np


class MissingExtraError(ImportError):
    """A target's SDK is not installed; the message says which extra to install."""


@dataclass(frozen=True)
class TensorSpec:
    """One model input: its name, shape (ints, or names for dynamic axes) and dtype."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"

    def static(self, sizes: dict[str, int]) -> tuple[int, ...]:
        return tuple(sizes[d] if isinstance(d, str) else d for d in self.shape)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TensorSpec:
        return cls(d["name"], tuple(d["shape"]), d.get("dtype", "float32"))


@dataclass(frozen=True)
class ComponentIO:
    """A pipeline component's interface as exported."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[str, ...]
    static_sizes: dict[str, int] = field(default_factory=dict)  # empty: dynamic axes stay dynamic

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": list(self.outputs),
            "static_sizes": dict(self.static_sizes),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ComponentIO:
        return cls(
            d["name"],
            tuple(TensorSpec.from_json(t) for t in d["inputs"]),
            tuple(d["outputs"]),
            dict(d.get("static_sizes", {})),
        )


class Session(Protocol):
    """A loaded component: named numpy inputs to named numpy outputs."""

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class Target(ABC):
    """Base class of every deployment target (built-in or third-party)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    extra: ClassVar[str]  # pip extra that installs the SDK: pip install 'fewstep[<extra>]'
    requires: ClassVar[tuple[str, ...]] = ()  # importable modules the SDK provides (to build)
    # what loading and running a bundle needs (a runtime-only install); default: `requires`/`extra`
    runtime_requires: ClassVar[tuple[str, ...] | None] = None
    runtime_extra: ClassVar[str | None] = None
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    export_format: ClassVar[str] = "onnx"
    device: ClassVar[str] = "cpu"
    prefers_static: ClassVar[bool] = False  # static shapes run faster on this target
    quant_backend: ClassVar[str | None] = None  # the fewstep.quantize handler set (by backend name) it uses
    quantizes_before_export: ClassVar[bool] = False  # quantize the torch module (e.g. ModelOpt), then export
    # int8 numerics depend on the x86 ISA (VNNI or not): the compile config's `cpu:` applies,
    # bundles record what they need of the CPU, and gates can run under a lower ISA
    cpu_isa_aware: ClassVar[bool] = False
    # precisions of the float arithmetic a bundle may ask the runtime for (compile's `inference_precision`);
    # the first is the default. Any other precision changes numerics, so the gates run with it.
    inference_precisions: ClassVar[tuple[str, ...]] = ("f32",)
    # where the exported transformer's attentions split their heads off (fewstep/joint_attention.py):
    # "heads" is diffusers' own graph; a target whose attention kernel reads token-major q, k, v at
    # no cost may ask for "tokens" or "keys" (compile's attention_layout: auto). openvino-cpu keeps
    # "heads": token-major measured no faster on its real-size SD3.5 steps (docs/benchmarks.md)
    attention_layout: ClassVar[str] = "heads"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        from fewstep.precisions import precision

        for name in cls.__dict__.get("precisions", ()):
            precision(name)  # a target may only accept registered precisions (ValueError names it)
        if "attention_layout" in cls.__dict__:
            from fewstep.joint_attention import check_layout

            check_layout(cls.attention_layout)

    def missing(self, runtime: bool = False) -> list[str]:
        """Modules this target needs (to build, or with `runtime` only to run bundles) that are not
        installed (found without importing them)."""
        needed = self.requires if not runtime or self.runtime_requires is None else self.runtime_requires
        return [m for m in needed if importlib.util.find_spec(m) is None]

    def unavailable_reason(self) -> str | None:
        """Why this target cannot run here, or None. May import the SDK (not used for listing)."""
        if missing := self.missing():
            return f"missing {', '.join(missing)}: pip install 'fewstep[{self.extra}]'"
        return None

    def require(self, runtime: bool = False) -> None:
        """Raise a clear error when the SDK (to build, or with `runtime` to run bundles) is missing."""
        if missing := self.missing(runtime):
            extra = (self.runtime_extra or self.extra) if runtime else self.extra
            raise MissingExtraError(f"target {self.name!r} needs {', '.join(missing)}: pip install 'fewstep[{extra}]'")

    def check_inference_precision(self, inference_precision: str) -> None:
        if inference_precision not in self.inference_precisions:
            raise ValueError(
                f"target {self.name!r} does not support inference precision {inference_precision!r}; "
                f"allowed: {', '.join(self.inference_precisions)}"
            )

    def check_precision(self, precision: str) -> None:
        if precision not in self.precisions:
            raise ValueError(
                f"target {self.name!r} does not support precision {precision!r}; allowed: {', '.join(self.precisions)}"
            )

    def quantize(
        self, model: Any, io: ComponentIO, scheme: Any, calibration: list[dict], out_dir: Path
    ) -> Path | Any | None:
        """A vendor's own quantizer: return the quantized model (a file; a torch module for targets
        that quantize before export), or None (the default) to use the `fewstep.quantize` handler
        registered for this target's `quant_backend` and the scheme's config type."""
        return None

    @abstractmethod
    def build(self, model: Path, io: ComponentIO, precision: str, out_dir: Path) -> list[str]:
        """Write the deployable files for one component into `out_dir`; return their names."""

    @abstractmethod
    def load(
        self,
        folder: Path,
        files: list[str],
        io: ComponentIO,
        threads: int | None = None,
        inference_precision: str = "f32",
    ) -> Session:
        """Open a built component for inference, its float arithmetic in `inference_precision`
        (one of `inference_precisions`; `Bundle.open` passes it only when it is not f32, so a
        target that runs f32 alone may leave the argument out)."""

    def isa_restriction(self, isa: Any) -> Any:
        """How this runtime can be made to run as a CPU of `isa` (a `fewstep.cpu.isa.Isa`
        this CPU includes): a `fewstep.runtime.restrict.Restriction`. The default emulates the
        CPU with qemu-user; targets with an ISA switch of their own override this."""
        from fewstep.cpu.restriction import emulated

        return emulated(isa, self.name)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "extra": self.extra,
            "precisions": list(self.precisions),
            "export_format": self.export_format,
            "device": self.device,
            "prefers_static": self.prefers_static,
        }
