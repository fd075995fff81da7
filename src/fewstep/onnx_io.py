"""Reading and writing ONNX files, and the fp16-weights pass (fp16 storage, fp32 compute)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

EXTERNAL_DATA_THRESHOLD = 1 << 30  # bytes of initializers above which weights go to one .data file


def save_onnx(model, path: Path) -> list[str]:
    """Save an ONNX model (weights in one side file when large); return the file names written."""
    import onnx

    path = Path(path)
    size = sum(len(t.raw_data) for t in model.graph.initializer)
    if size < EXTERNAL_DATA_THRESHOLD:
        onnx.save_model(model, str(path))
        return [path.name]
    data = path.name + ".data"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data)
    return [path.name, data]


DATA_ALIGNMENT = 4096  # external tensors start on page boundaries (memory-mapped by the runtimes)


def model_tensors(graph):
    """Every tensor of a graph: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from model_tensors(attr.g)
            for sub in attr.graphs:
                yield from model_tensors(sub)


def _external_bytes(src: Path, tensor) -> bytes:
    from onnx.external_data_helper import ExternalDataInfo

    info = ExternalDataInfo(tensor)
    where = src.parent / info.location
    if not where.is_file():
        raise FileNotFoundError(f"{src}: external data of tensor {tensor.name!r} is missing: {where}")
    with open(where, "rb") as f:
        f.seek(info.offset or 0)
        return f.read(info.length) if info.length else f.read()


def _to_fp16(graph, min_elements: int) -> set[str]:
    """Mark float32 initializers for fp16 storage: rename them, add the Cast back to float32 in
    front of their users; their bytes are converted while copying. Returns the new names."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    from onnx.external_data_helper import uses_external_data

    inputs = {i.name for i in graph.input}
    renamed, casts = set(), []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or math.prod(init.dims) < min_elements or init.name in inputs:
            continue
        if not uses_external_data(init):  # inline: as raw float32 bytes, converted like the rest
            init.raw_data = numpy_helper.to_array(init).astype(np.float32).tobytes()
            del init.float_data[:]
        name = init.name
        init.name = name + "__fp16"
        renamed.add(init.name)
        casts.append(helper.make_node("Cast", [init.name], [name], to=TensorProto.FLOAT, name=name + "__cast"))
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return renamed


def _half(raw: bytes) -> bytes:
    import numpy as np

    return np.frombuffer(raw, np.float32).astype(np.float16).tobytes()


def has_external_data(model) -> bool:
    """Whether an ONNX model (a path, or a proto loaded without its data) keeps any tensor
    outside the model file, as exports over 2 GB do."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    return any(uses_external_data(t) for t in model_tensors(model.graph))


def model_bytes(path: Path) -> int:
    """Bytes of an ONNX model on disk: the model file and every external data file it names."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    files = {ExternalDataInfo(t).location for t in model_tensors(model.graph) if uses_external_data(t)}
    return path.stat().st_size + sum((path.parent / f).stat().st_size for f in files)


def copy_onnx(src: Path, dst: Path, fp16: bool = False, min_elements: int = 16) -> list[str]:
    """Copy an ONNX file and its external data, gathered into one side file `<dst>.data`;
    with `fp16`, float32 initializers are stored as float16 on the way (see `fp16_weights`).

    Over 2 GB the TorchScript exporter writes one file per tensor, named after the tensor,
    beside the model; a bundle keeps one `.data` file per component instead. Tensors are
    copied one at a time, so memory stays at the largest tensor.
    """
    import onnx
    from onnx import TensorProto
    from onnx.external_data_helper import uses_external_data

    src, dst = Path(src), Path(dst)
    model = onnx.load(str(src), load_external_data=False)
    if not has_external_data(model):
        if fp16:  # small: in memory
            return save_onnx(fp16_weights(onnx.load(str(src)), min_elements), dst)
        shutil.copyfile(src, dst)
        return [dst.name]
    halves = _to_fp16(model.graph, min_elements) if fp16 else set()
    moved = [t for t in model_tensors(model.graph) if uses_external_data(t) or t.name in halves]
    data = dst.name + ".data"
    tmp = dst.with_name(f".{data}.tmp")
    with open(tmp, "wb") as out:
        for tensor in moved:
            blob = _external_bytes(src, tensor) if uses_external_data(tensor) else tensor.raw_data
            if tensor.name in halves:
                blob = _half(blob)
                tensor.data_type = TensorProto.FLOAT16
            tensor.ClearField("raw_data")
            out.write(b"\0" * (-out.tell() % DATA_ALIGNMENT))
            offset = out.tell()
            out.write(blob)
            del tensor.external_data[:]
            tensor.data_location = TensorProto.EXTERNAL
            for key, value in (("location", data), ("offset", offset), ("length", len(blob))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, str(value)
    tmp.replace(dst.with_name(data))
    onnx.save_model(model, str(dst))
    return [dst.name, data]


def fp16_weights(model, min_elements: int = 16):
    """Store float32 initializers as float16 with a Cast back to float32 in front of their users.

    Halves the weight bytes while every op still computes in float32 (what OpenVINO's
    fp16-compressed IR does on CPU). onnxconverter-common's float16 conversion instead
    computes in fp16, which ONNX Runtime's CPU provider runs slowly or not at all.
    In memory: for models whose weights are inline (`copy_onnx(fp16=True)` streams the rest).
    """
    import onnx

    halves = _to_fp16(model.graph, min_elements)
    for init in model.graph.initializer:
        if init.name in halves:
            init.raw_data = _half(init.raw_data)
            init.data_type = onnx.TensorProto.FLOAT16
    onnx.checker.check_model(model)
    return model
