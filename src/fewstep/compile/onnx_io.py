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


def copy_onnx(src: Path, dst: Path) -> list[str]:
    """Copy an ONNX file with its external-data side file, if any."""
    src, dst = Path(src), Path(dst)
    shutil.copyfile(src, dst)
    names = [dst.name]
    side = src.with_name(src.name + ".data")
    if side.exists():
        shutil.copyfile(side, dst.with_name(dst.name + ".data"))
        names.append(dst.name + ".data")
    return names


def fp16_weights(model, min_elements: int = 16):
    """Store float32 initializers as float16 with a Cast back to float32 in front of their users.

    Halves the weight bytes while every op still computes in float32 (what OpenVINO's
    fp16-compressed IR does on CPU). onnxconverter-common's float16 conversion instead
    computes in fp16, which ONNX Runtime's CPU provider runs slowly or not at all.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    input_names = {i.name for i in graph.input}
    casts, keep = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or math.prod(init.dims) < min_elements or init.name in input_names:
            keep.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype("float16"), init.name + "__fp16")
        keep.append(half)
        casts.append(
            helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=init.name + "__cast")
        )
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    return model
