"""INT8 (static W8A8) on both CPU backends: calibration, weights-first, memory refusal, 7-bit weights, external data."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from fewstep.quantize.cpu import needs_reduce_range
from quant_helpers import (
    build,
    fake_quantize_inputs,
    onnx_ops,
    ov_element_types,
    transformer_cosines,
    two_matmul_onnx,
)


@pytest.mark.parametrize("target", ["openvino-cpu", "onnxruntime-cpu"])
def test_int8_is_calibrated_at_the_student_timesteps(tiny_student_dir, tmp_path, target):
    path, report, manifest = build(tiny_student_dir, tmp_path, target, {"scheme": "int8", "calibration_prompts": 4})
    calib = manifest["quantization"]["calibration"]
    student = json.loads((tiny_student_dir / "fewstep_student.json").read_text())
    # every student timestep (the scheduler's sigmas before the final 0) is covered
    assert calib["timesteps"] == pytest.approx(manifest["pipeline"]["sigmas"][:-1])
    assert len(calib["timesteps"]) == student["steps"] and calib["prompts"] == 4
    assert manifest["precision"]["transformer"] == "int8" and manifest["precision"]["vae_decoder"] == "fp32"
    assert min(transformer_cosines(report)) > 0.98, report.failures()
    comp = path / "components"
    if target == "onnxruntime-cpu":
        assert {"QuantizeLinear", "DequantizeLinear"} <= onnx_ops(comp / "transformer.onnx")
    else:
        assert {"i8", "u8"} & ov_element_types(comp / "transformer.xml")


def test_weights_first_int8_is_static_w8a8_on_compressed_weights(tiny_student_dir, tmp_path):
    """`mode: weights-first`: int8 per-channel weight constants, static activation ranges, and no
    float weights anywhere (the fp32 model is never compiled for statistics)."""
    quant = {"scheme": "int8", "mode": "weights-first", "calibration_prompts": 2, "components": ["transformer"]}
    path, report, manifest = build(tiny_student_dir, tmp_path, "openvino-cpu", quant)
    assert report.passed, [r.describe() for r in report.failures()]
    assert manifest["quantization"]["scheme"]["mode"] == "weights-first"
    assert min(transformer_cosines(report)) > 0.98
    xml = path / "components" / "transformer.xml"
    kinds = fake_quantize_inputs(xml)
    assert kinds and set(kinds) == {"activation"}  # weights are int8 constants, not fake-quantized floats
    assert "i8" in ov_element_types(xml)
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    float_weights = [
        op.get_friendly_name()
        for op in model.get_ops()
        if op.get_type_name() == "MatMul" and op.input_value(1).get_node().get_type_name() == "Constant"
    ]
    assert not float_weights


def test_full_ptq_is_refused_up_front_when_it_cannot_fit(tmp_path, monkeypatch):
    """`mode: full` needs ~2.9x the fp32 model in memory: refuse before starting (naming the
    mode that fits) instead of being killed minutes in; `weights-first` goes ahead."""
    import openvino as ov
    from openvino import opset13 as ops

    import fewstep.runtime.memory as memory
    from fewstep.quantize.config import Int8Config
    from fewstep.quantize.openvino import int8, model_bytes
    from fewstep.targets.base import ComponentIO, TensorSpec

    rng = np.random.default_rng(0)
    x = ops.parameter([4, 64], np.float32, name="x")
    w = ops.constant(rng.standard_normal((64, 64)).astype(np.float32))
    y = ops.matmul(ops.relu(ops.matmul(x, w, False, True)), w, False, True)
    y.output(0).get_tensor().set_names({"y"})
    xml = tmp_path / "m.xml"
    ov.save_model(ov.Model([y], [x]), str(xml), compress_to_fp16=False)
    assert model_bytes(xml) == xml.with_suffix(".bin").stat().st_size >= 64 * 64 * 4
    io = ComponentIO("transformer", (TensorSpec("x", (4, 64)),), ("y",))
    items = [{"x": rng.standard_normal((4, 64)).astype(np.float32)} for _ in range(2)]
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 2 * model_bytes(xml))
    with pytest.raises(MemoryError, match="weights-first"):
        int8(xml, io, Int8Config(mode="full"), items, tmp_path)
    assert int8(xml, io, Int8Config(mode="weights-first"), items, tmp_path).exists()
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 3 * model_bytes(xml))
    assert int8(xml, io, Int8Config(mode="full"), items, tmp_path).exists()


def test_ort_reduce_range_gives_7bit_weights(tmp_path, monkeypatch):
    """`reduce_range` (what `cpu: portable` sets) quantizes weights to 7 bits; full range is only
    exact where the int8 kernel has VNNI (elsewhere u8 x s8 pair sums saturate int16)."""
    import torch
    from onnx import numpy_helper

    from fewstep.quantize.config import Int8Config
    from fewstep.quantize.onnxruntime import int8

    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16)).eval()
    x = torch.rand(32, 64) * 4
    src = tmp_path / "m.onnx"
    torch.onnx.export(
        model,
        (x[:1],),
        str(src),
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "b"}, "y": {0: "b"}},
        dynamo=False,
        opset_version=17,
    )
    items = [{"x": x[i : i + 8].numpy()} for i in range(0, 32, 8)]
    monkeypatch.chdir(tmp_path)  # relative paths, as the runner passes them
    src = Path("m.onnx")

    class IO:
        name = "m"

    ranges = {}
    for reduce in (True, False):
        out = Path(str(reduce))
        out.mkdir()
        q = onnx.load(str(int8(src, IO, Int8Config(reduce_range=reduce), items, out)))
        weights = [numpy_helper.to_array(t) for t in q.graph.initializer if t.data_type == onnx.TensorProto.INT8]
        ranges[reduce] = max(int(np.abs(w.astype(np.int32)).max()) for w in weights)
        import onnxruntime as ort

        y = ort.InferenceSession(q.SerializeToString()).run(None, {"x": x.numpy()})[0]
        ref = model(x).detach().numpy()
        if reduce or not needs_reduce_range():
            assert (y * ref).sum() / np.linalg.norm(y) / np.linalg.norm(ref) > 0.999
    assert ranges[True] <= 64 < ranges[False]  # 7-bit weights with reduce_range


def test_ort_int8_keeps_external_weights_of_large_exports(tmp_path):
    """Exports over 2 GB keep their weights in side files: static int8 must read and write them."""
    import onnxruntime as ort
    from onnx.external_data_helper import convert_model_to_external_data

    from fewstep.onnx_io import copy_onnx, has_external_data
    from fewstep.quantize.config import Int8Config
    from fewstep.quantize.onnxruntime import int8
    from fewstep.targets.base import ComponentIO, TensorSpec

    rng = np.random.default_rng(0)
    w1, w2 = (rng.standard_normal((64, 64)).astype(np.float32) * 0.1 for _ in range(2))
    model = two_matmul_onnx(w1, w2, 4, ("Relu", ""))
    src = tmp_path / "export" / "m.onnx"
    src.parent.mkdir()
    convert_model_to_external_data(model, all_tensors_to_one_file=False, size_threshold=0)
    onnx.save_model(model, str(src))
    assert has_external_data(src)
    io = ComponentIO("m", (TensorSpec("x", (4, 64)),), ("y",))
    items = [{"x": rng.standard_normal((4, 64)).astype(np.float32)} for _ in range(4)]
    built = int8(src, io, Int8Config(), items, tmp_path)
    out = tmp_path / "bundle" / "m.onnx"
    out.parent.mkdir()
    copy_onnx(built, out)
    assert "QuantizeLinear" in onnx_ops(out)
    x = items[0]["x"]
    y = ort.InferenceSession(str(out)).run(None, {"x": x})[0]
    ref = np.maximum(x @ w1, 0) @ w2
    assert (y * ref).sum() / np.linalg.norm(y) / np.linalg.norm(ref) > 0.99


def test_ort_int8_calibrated_apart_matches_quantize_static(tmp_path):
    """fewstep calibrates before quantize_static (to hold the weights once, not three times): the
    quantized model must equal quantize_static's own one-shot calibration, initializer for initializer."""
    from onnx import numpy_helper
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from fewstep.quantize.config import Int8Config
    from fewstep.quantize.onnxruntime import _Reader, int8
    from fewstep.targets.base import ComponentIO, TensorSpec

    rng = np.random.default_rng(1)
    w1, w2 = (rng.standard_normal((32, 32)).astype(np.float32) * 0.2 for _ in range(2))
    model = two_matmul_onnx(w1, w2, 8, ("Gelu", "com.microsoft"))
    src = tmp_path / "m.onnx"
    onnx.save_model(model, str(src))
    items = [{"x": (rng.standard_normal((8, 32)) * (i + 1)).astype(np.float32)} for i in range(3)]
    cfg = Int8Config(reduce_range=False)
    ours = int8(src, ComponentIO("m", (TensorSpec("x", (8, 32)),), ("y",)), cfg, items, tmp_path)
    theirs = tmp_path / "reference.onnx"
    quantize_static(
        str(tmp_path / "m.pre.onnx"), str(theirs), _Reader(items), quant_format=QuantFormat.QDQ, per_channel=True,
        reduce_range=False, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=list(cfg.op_types),
        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
    )  # fmt: skip

    def inits(path):
        return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}

    a, b = inits(ours), inits(theirs)
    assert a.keys() == b.keys() and any(k.endswith("_scale") for k in a)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_statistics_allocation_failure_is_a_memory_error_that_says_what_to_do():
    from fewstep.quantize.openvino import statistics_memory_error

    err = RuntimeError("Check 'ptr' failed at cpu_memory.cpp:257:\nFailed to allocate 30682382336 bytes of memory")
    mem = statistics_memory_error(err, "vae_decoder")
    assert isinstance(mem, MemoryError)
    assert "vae_decoder" in str(mem) and "30.7 GB" in str(mem) and "int8-weights" in str(mem)
    other = RuntimeError("some other failure")
    assert statistics_memory_error(other, "vae_decoder") is other
