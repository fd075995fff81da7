"""fewstep's runtime on the OpenVINO ecosystem's layout (`compile.openvino_layout: true`): the
bundle's components are the `<name>/openvino_model.xml` files that optimum-intel and OpenVINO
GenAI read, not a second copy. Their interface is the ecosystem's; fewstep's names are aliases
on the same output tensors (CLIP's penultimate `hidden_states`, T5's `hidden_states`), and the
VAE decoder's [-1, 1] `sample` is mapped back to fewstep's [0, 1] `image` here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from fewstep.targets.base import Session


def component_folder(root: Path, layout: str | None) -> Path:
    """Where a component's `files` are relative to: the bundle for layout components."""
    return Path(root) if layout else Path(root) / "components"


def _vae(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"image": np.clip((outputs["sample"] + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)}


# component name -> how its layout outputs become fewstep's (the others are named alike)
ADAPTERS: dict[str, Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]] = {"vae_decoder": _vae}


class LayoutSession:
    """A target session whose outputs are adapted to fewstep's component interface."""

    def __init__(self, session: Session, adapt: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]):
        self.session, self.adapt = session, adapt

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.adapt(self.session.run(feeds))


def adapted(name: str, session: Session, layout: str | None) -> Session:
    """`session` as fewstep's component `name` expects it."""
    if layout and name in ADAPTERS:
        return LayoutSession(session, ADAPTERS[name])
    return session
