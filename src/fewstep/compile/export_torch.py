"""torch "export" for targets that run the torch modules themselves (`export_format = "torch"`,
e.g. `torch-cuda`): the component's library model saved by its own library (diffusers or
transformers `save_pretrained`, safetensors) plus a small record of the fewstep wrapper around it,
so a loader rebuilds exactly the module the gates compare against, without unpickling anything."""

from __future__ import annotations

import json
from pathlib import Path

from fewstep.component_modules import WRAPPERS, wrapper_record
from fewstep.components import Component
from fewstep.sd3_pipeline import drop_build_paths
from fewstep.targets.base import ComponentIO

WRAPPER_FILE = "wrapper.json"


def export_torch(comp: Component, folder: Path) -> ComponentIO:
    """Write `folder/model/` (the library model) and `folder/wrapper.json`; dynamic shapes stay dynamic."""
    record = wrapper_record(comp.module)
    inner = getattr(comp.module, WRAPPERS[record["wrapper"]][1])
    folder = Path(folder)
    inner.save_pretrained(str(folder / "model"), safe_serialization=True)
    (folder / WRAPPER_FILE).write_text(json.dumps(record, indent=2))
    drop_build_paths(folder)
    return comp.io
