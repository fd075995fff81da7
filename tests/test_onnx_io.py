import numpy as np
import onnx
import onnxruntime as ort
import torch

from fewstep.onnx_io import fp16_weights


def test_fp16_weights_halves_storage_and_computes_in_fp32(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.GELU(), torch.nn.Linear(128, 32)).eval()
    x = torch.randn(4, 64)
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False, opset_version=17)
    half = fp16_weights(onnx.load(str(path)))
    onnx.save(half, str(tmp_path / "h.onnx"))
    assert (tmp_path / "h.onnx").stat().st_size < 0.6 * path.stat().st_size
    assert {n.op_type for n in half.graph.node} >= {"Cast"}
    run = ort.InferenceSession(str(tmp_path / "h.onnx")).run(None, {"x": x.numpy()})[0]
    assert run.dtype == np.float32
    ref = model(x).detach().numpy()
    cos = (run * ref).sum() / np.linalg.norm(run) / np.linalg.norm(ref)
    assert cos > 0.9999 and np.abs(run - ref).max() < 1e-2


def test_copy_gathers_per_tensor_external_data_into_one_side_file(tmp_path):
    """Over 2 GB the TorchScript exporter writes a file per tensor (Constant attributes too);
    a bundle component gets one aligned `.data` file, and runs the same."""
    from onnx import TensorProto, helper, numpy_helper

    from fewstep.onnx_io import DATA_ALIGNMENT, copy_onnx

    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((64, 32)).astype(np.float32), rng.standard_normal(32).astype(np.float32)
    const = helper.make_node("Constant", [], ["b"], value=numpy_helper.from_array(b, "b_value"))
    graph = helper.make_graph(
        [const, helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 32])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    src = tmp_path / "export" / "m.onnx"
    src.parent.mkdir()
    from onnx.external_data_helper import convert_model_to_external_data

    convert_model_to_external_data(model, all_tensors_to_one_file=False, size_threshold=0, convert_attribute=True)
    onnx.save_model(model, str(src))
    assert len(list(src.parent.iterdir())) == 3  # the model + one file per tensor, the Constant's too

    dst = tmp_path / "bundle" / "m.onnx"
    dst.parent.mkdir()
    assert copy_onnx(src, dst) == ["m.onnx", "m.onnx.data"]
    assert sorted(p.name for p in dst.parent.iterdir()) == ["m.onnx", "m.onnx.data"]
    offsets = [
        int(e.value)
        for t in onnx.load(str(dst), load_external_data=False).graph.initializer
        for e in t.external_data
        if e.key == "offset"
    ]
    assert offsets and all(o % DATA_ALIGNMENT == 0 for o in offsets)
    x = rng.standard_normal((2, 64)).astype(np.float32)
    out = ort.InferenceSession(str(dst)).run(None, {"x": x})[0]
    np.testing.assert_allclose(out, x @ w + b, rtol=1e-5, atol=1e-5)


def test_copy_names_a_missing_external_tensor(tmp_path):
    import pytest

    from fewstep.onnx_io import copy_onnx

    w = np.ones((4, 4), np.float32)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.numpy_helper.from_array(w, "w")],
    )
    src = tmp_path / "m.onnx"
    onnx.save_model(
        onnx.helper.make_model(graph),
        str(src),
        save_as_external_data=True,
        all_tensors_to_one_file=False,
        size_threshold=0,
    )
    (tmp_path / "w").unlink()
    with pytest.raises(FileNotFoundError, match="external data of tensor 'w' is missing"):
        copy_onnx(src, tmp_path / "out.onnx")


def test_fp16_copy_of_a_large_export_streams_and_matches(tmp_path):
    """fp16-weights of an export with external weights: converted while copying, same outputs."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.external_data_helper import convert_model_to_external_data

    from fewstep.onnx_io import copy_onnx

    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((64, 32)).astype(np.float32)
    w2 = rng.standard_normal((32, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("MatMul", ["h", "w2"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    src = tmp_path / "export" / "m.onnx"
    src.parent.mkdir()
    convert_model_to_external_data(model, all_tensors_to_one_file=False, size_threshold=1024)  # w2 stays inline
    onnx.save_model(model, str(src))
    dst = tmp_path / "bundle" / "m.onnx"
    dst.parent.mkdir()
    assert copy_onnx(src, dst, fp16=True) == ["m.onnx", "m.onnx.data"]
    stored = onnx.load(str(dst), load_external_data=False)
    assert {t.name: t.data_type for t in stored.graph.initializer} == {
        "w1__fp16": TensorProto.FLOAT16,
        "w2__fp16": TensorProto.FLOAT16,
    }
    assert (dst.parent / "m.onnx.data").stat().st_size < (64 * 32 + 32 * 8) * 4
    x = rng.standard_normal((2, 64)).astype(np.float32)
    out = ort.InferenceSession(str(dst)).run(None, {"x": x})[0]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x @ w1 @ w2, rtol=2e-2, atol=2e-2)
