"""torch -> ONNX export of one component, with dynamic or static axes, parity-checked."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import torch

from fewstep.compile.config import Exporter
from fewstep.components import Component
from fewstep.fsutil import require_free_space


def static_example(comp: Component, batch: int) -> tuple[torch.Tensor, ...]:
    """Example inputs resized along the batch axis."""
    return tuple(t[:1].expand(batch, *t.shape[1:]).contiguous() for t in comp.example)


@torch.no_grad()
def export_onnx(
    comp: Component, path: Path, static_batch: int | None = None, exporter: Exporter = Exporter.torchscript
):
    """Export `comp` to `path`; with `static_batch` every axis is fixed. Returns the I/O used."""
    io = comp.io
    example = comp.example
    if static_batch is not None:
        io = replace(io, static_sizes={"batch": static_batch})
        example = static_example(comp, static_batch)
    names_in = [t.name for t in io.inputs]
    path = Path(path)
    weights = sum(t.numel() * t.element_size() for t in (*comp.module.parameters(), *comp.module.buffers()))
    require_free_space(path.parent, weights, path.name)  # the ONNX file holds every weight in full
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter is Exporter.torchscript:
            axes = None
            if static_batch is None:
                axes = {t.name: {i: d for i, d in enumerate(t.shape) if isinstance(d, str)} for t in io.inputs}
                axes.update({o: {0: "batch"} for o in io.outputs})
            kwargs = dict(dynamic_axes=axes, opset_version=17, dynamo=False, do_constant_folding=True)
        else:
            shapes = None
            if static_batch is None:
                batch = torch.export.Dim("batch", min=1, max=4096)
                shapes = tuple({i: batch for i, d in enumerate(t.shape) if isinstance(d, str)} for t in io.inputs)
            kwargs = dict(dynamic_shapes=shapes, opset_version=18, dynamo=True, external_data=False)
        torch.onnx.export(
            comp.module, example, str(path), input_names=names_in, output_names=list(io.outputs), **kwargs
        )
    return io
