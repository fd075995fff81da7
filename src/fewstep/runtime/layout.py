"""fewstep's runtime on the ecosystem layouts (`compile.openvino_layout` / `onnx_layout`): the
bundle's components are the `<name>/openvino_model.xml` files that optimum-intel and OpenVINO
GenAI read, or the `<name>/model.onnx` files of optimum's ONNX Runtime pipelines, not a second
copy. Their interface is the ecosystem's; fewstep's output names are aliases on the same OpenVINO
tensors or extra ONNX outputs, and what differs is adapted here: the OpenVINO VAE decoder's
[-1, 1] `sample` back to fewstep's [0, 1] `image`, the ONNX VAE decoder's `latent_sample` input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from fewstep.targets.base import Session


def component_folder(root: Path, layout: str | None) -> Path:
    """Where a component's `files` are relative to: the bundle for layout components."""
    return Path(root) if layout else Path(root) / "components"


Arrays = dict[str, np.ndarray]


def _vae_out(outputs: Arrays) -> Arrays:
    return {"image": np.clip((outputs["sample"] + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)}


def _vae_in(feeds: Arrays) -> Arrays:
    return {"latent_sample": feeds["latents"]}


def _same(arrays: Arrays) -> Arrays:
    return arrays


# (layout, component) -> (feeds to the layout's inputs, the layout's outputs to fewstep's); the
# others are named alike (fewstep's outputs are aliases, or kept beside the ecosystem's)
ADAPTERS: dict[tuple[str, str], tuple[Callable[[Arrays], Arrays], Callable[[Arrays], Arrays]]] = {
    ("openvino", "vae_decoder"): (_same, _vae_out),
    ("onnx", "vae_decoder"): (_vae_in, _same),
}


class LayoutSession:
    """A target session whose inputs and outputs are adapted to fewstep's component interface."""

    def __init__(self, session: Session, adapt_in: Callable[[Arrays], Arrays], adapt_out: Callable[[Arrays], Arrays]):
        self.session, self.adapt_in, self.adapt_out = session, adapt_in, adapt_out

    def run(self, feeds: Arrays) -> Arrays:
        return self.adapt_out(self.session.run(self.adapt_in(feeds)))


def adapted(name: str, session: Session, layout: str | None) -> Session:
    """`session` as fewstep's component `name` expects it."""
    if layout and (layout, name) in ADAPTERS:
        return LayoutSession(session, *ADAPTERS[(layout, name)])
    return session
