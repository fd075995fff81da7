import numpy as np
import pytest

ov = pytest.importorskip("openvino")
nncf = pytest.importorskip("nncf")

from fewstep.targets.openvino_cpu import INT8_WEIGHTS_DQ_GROUP, dynamic_quant_group  # noqa: E402


def _model(layers: int = 3):
    from openvino import opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([4, 256], np.float32, name="x")
    h = x
    for _ in range(layers):
        h = ops.matmul(h, ops.constant((rng.standard_normal((256, 256)) * 0.05).astype(np.float32)), False, True)
    return ov.Model([h], [x])


def test_dynamic_quant_group_follows_the_weight_format():
    assert dynamic_quant_group(_model()) is None  # fp32 weights: nothing to set
    int8 = nncf.compress_weights(_model(), mode=nncf.CompressWeightsMode.INT8_SYM)
    assert dynamic_quant_group(int8) == INT8_WEIGHTS_DQ_GROUP
    int4 = nncf.compress_weights(
        _model(), mode=nncf.CompressWeightsMode.INT4_SYM, group_size=32, ratio=1.0, all_layers=True
    )
    assert dynamic_quant_group(int4) == 32


def test_built_ir_carries_the_group_and_compile_applies_it(tmp_path):
    from fewstep.targets.base import ComponentIO, TensorSpec
    from fewstep.targets.openvino_cpu import OpenVINOCPU

    src = tmp_path / "src.xml"
    ov.save_model(nncf.compress_weights(_model(), mode=nncf.CompressWeightsMode.INT8_SYM), str(src))
    io = ComponentIO("transformer", (TensorSpec("x", ("batch", 256)),), ("y",))
    target = OpenVINOCPU()
    files = target.build(src, io, "int8-weights", tmp_path)
    compiled = ov.Core().compile_model(str(tmp_path / files[0]), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert int(compiled.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE")) == INT8_WEIGHTS_DQ_GROUP
    x = np.random.default_rng(1).standard_normal((4, 256)).astype(np.float32)
    ref = ov.Core().compile_model(str(src), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = target.load(tmp_path, files, io).run({"x": x})
    want = ref.create_infer_request().infer({0: x})
    a, b = next(iter(got.values())).ravel(), np.asarray(next(iter(want.values()))).ravel()
    assert np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b) >= 0.999


def test_ir_bytes_predicts_the_bin_and_a_full_disk_is_refused_before_writing(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    import fewstep.fsutil as fsutil
    from fewstep.fsutil import DiskSpaceError
    from fewstep.targets.openvino_cpu import ir_bytes, save_ir

    model = _model()
    for fp16 in (False, True):
        xml = save_ir(model, tmp_path / f"m{int(fp16)}.xml", compress_to_fp16=fp16)
        size = xml.with_suffix(".bin").stat().st_size
        assert abs(ir_bytes(model, fp16) - size) <= 0.01 * size  # 3 x 256 x 256 weights: f32 786 KB, fp16 393 KB
    usage = namedtuple("usage", "total used free")
    real = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(fsutil.shutil, "disk_usage", lambda p: usage(real.total, real.total, 60 << 20))
    with pytest.raises(DiskSpaceError, match=r"m\.bin in .*out: it needs about 1 MiB and 60 MiB are free"):
        save_ir(_model(), tmp_path / "out" / "m.xml")  # 0.8 MB of weights + 64 MiB slack > 60 MiB
    assert not (tmp_path / "out").exists()  # refused before anything was written
    monkeypatch.setattr(fsutil, "DISK_SLACK", 0)  # now only the weights and the 5 % margin count
    for free, fits in ((ir_bytes(model) // 2, False), (ir_bytes(model) * 2, True)):
        monkeypatch.setattr(fsutil.shutil, "disk_usage", lambda p, free=free: usage(real.total, real.total, free))
        xml = tmp_path / f"free{free}.xml"
        if fits:
            assert save_ir(model, xml).with_suffix(".bin").stat().st_size == ir_bytes(model)
        else:
            with pytest.raises(DiskSpaceError):
                save_ir(model, xml)
            assert not xml.exists() and not xml.with_suffix(".bin").exists()
