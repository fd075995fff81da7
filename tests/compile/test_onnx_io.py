import numpy as np
import onnx
import onnxruntime as ort
import torch

from fewstep.compile.onnx_io import fp16_weights


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
