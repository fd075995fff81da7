"""Sinusoidal phases kept at f32 in an OpenVINO IR, whatever precision it is compiled or saved at.

A timestep embedding computes sin(t * f) and cos(t * f) with t up to 1000 and f up to 1, so the
phase t * f needs f32: bf16 spaces values 4 apart above 512 (OpenVINO's CPU plugin at bf16 turns
t = 858 into 856 before the product) and an fp16 frequency table is off by up to 0.5 rad at
t = 1000. Either error moves the high-frequency channels, and with them every adaLN modulation
(benchmarks/ov_timestep_precision.py: a real-size SD3.5 transformer at bf16 is at cosine 0.998
against f32 at t = 858, the hoisted modulation at 0.950).

`keep_phases_f32(model)` marks the phase subgraph of every Sin and Cos: the ops that feed it (up
to the model's inputs and constants, not through a MatMul, convolution or FakeQuantize) and the
ops that only rearrange its result (Concat, Slice, ... up to the next of those or the first op
that mixes in another tensor). A Sin or Cos applied to a full activation (a periodic activation
function) would keep its chain back to the previous MatMul at f32 too: correct, at the cost of
running that elementwise chain in f32 (SD3 has none; its only Sin / Cos are the timestep's).

The mark is OpenVINO's own `precise` runtime attribute, which the IR stores as
`DisablePrecisionConversion`: the CPU plugin keeps such nodes at their IR precision under a bf16
inference hint, and `save_model(compress_to_fp16=True)` leaves marked constants at f32. Two
details of OpenVINO 2026.4 that the code works around (tests/targets/test_openvino_phases.py):

- the mark takes effect only when read from an IR (set from Python it is a plain string until
  serialized), so `reread` round-trips a model through a scratch IR before fp16 compression;
- the CPU plugin turns Unsqueeze into its own Reshape without carrying the mark, so a marked
  Unsqueeze is replaced by the equivalent Reshape.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

PHASE_OPS = frozenset({"Sin", "Cos"})
# where the walks stop: learned layers (their inputs are converted to bf16 by the plugin as usual),
# activation quantizers (part of the int8 MatMul's input) and the graph's ends
BARRIERS = frozenset(
    {
        "MatMul",
        "Convolution",
        "GroupConvolution",
        "ConvolutionBackpropData",
        "FakeQuantize",
        "Parameter",
        "Constant",
        "Result",
    }
)
# the Python key that save_model writes as <attribute name="DisablePrecisionConversion" .../>, and
# the key the attribute has in a model read from an IR
PRECISE = "precise_0"
READ_BACK = "DisablePrecisionConversion_0"


def phase_subgraph(model) -> list:
    """The ops to keep at f32, in topological order: every Sin/Cos, their ancestors up to the
    barriers, and the descendants whose every non-constant input is already in the set."""
    ops = list(model.get_ordered_ops())
    order = {op.get_instance_id(): i for i, op in enumerate(ops)}
    marked: dict[int, object] = {}
    stack = [op for op in ops if op.get_type_name() in PHASE_OPS]
    while stack:  # upward: what the phases are computed from
        node = stack.pop()
        if node.get_instance_id() in marked:
            continue
        marked[node.get_instance_id()] = node
        for port in node.inputs():
            source = port.get_source_output().get_node()
            if source.get_type_name() not in BARRIERS:
                stack.append(source)
    for op in ops:  # downward, in topological order: what only rearranges them
        if op.get_instance_id() in marked or op.get_type_name() in BARRIERS:
            continue
        sources = [p.get_source_output().get_node() for p in op.inputs()]
        fed = [s for s in sources if s.get_type_name() != "Constant"]
        if fed and all(s.get_instance_id() in marked for s in fed):
            marked[op.get_instance_id()] = op
    return sorted(marked.values(), key=lambda n: order[n.get_instance_id()])


def _as_reshape(node):
    """The Reshape equal to an Unsqueeze whose output has at most one dynamic dimension, else None."""
    from openvino import opset13 as ops

    shape = node.get_output_partial_shape(0)
    if shape.rank.is_dynamic:
        return None
    dims = [d.get_length() if d.is_static else -1 for d in shape]
    if dims.count(-1) > 1:
        return None
    reshape = ops.reshape(node.input_value(0), ops.constant(np.array(dims, np.int64)), special_zero=False)
    reshape.set_friendly_name(node.get_friendly_name())
    node.output(0).replace(reshape.output(0))
    return reshape


def keep_phases_f32(model) -> int:
    """Mark `model`'s phase subgraphs to stay f32 (in place), with their floating-point constants
    (the frequency table: fp16 compression skips a marked constant, not a marked consumer's);
    the number of ops marked, constants not counted."""
    subgraph = phase_subgraph(model)
    for node in subgraph:
        if node.get_type_name() == "Unsqueeze":
            node = _as_reshape(node) or node
        node.get_rt_info()[PRECISE] = ""
        for port in node.inputs():
            source = port.get_source_output().get_node()
            if source.get_type_name() == "Constant" and source.get_element_type().is_real():
                source.get_rt_info()[PRECISE] = ""
    return len(subgraph)


def is_marked(node) -> bool:
    """Whether `node` is kept at its IR precision: marked here, or read so from an IR."""
    info = node.get_rt_info()
    return PRECISE in info or READ_BACK in info


def needs_reread(model) -> bool:
    """Whether `model` holds marks set from Python, which fp16 compression does not see yet."""
    return any(PRECISE in op.get_rt_info() for op in model.get_ordered_ops())


def reread(model, scratch: Path):
    """`model` saved as an f32 IR under `scratch` and read back, so that its marks are OpenVINO
    attributes (which fp16 compression honours) rather than strings. The scratch files are
    unlinked on return; the returned model keeps its weights mapped (POSIX keeps an unlinked
    file's pages while mapped), so a multi-GB transformer is not held twice in memory."""
    import openvino as ov

    with tempfile.TemporaryDirectory(dir=scratch, prefix=".phases-", ignore_cleanup_errors=True) as tmp:
        xml = Path(tmp) / "model.xml"
        ov.save_model(model, str(xml), compress_to_fp16=False)
        return ov.Core().read_model(str(xml))
