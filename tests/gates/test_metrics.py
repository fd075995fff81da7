import math

import numpy as np
import pytest

from fewstep.gates import metrics
from fewstep.gates.config import GateResult


def test_tensor_metrics_known_values():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[1.0, 0.0], [0.0, -2.0]])
    assert metrics.cosine(a, a) == pytest.approx(1.0)
    assert metrics.cosine(a, b) == pytest.approx(-1.0)  # the worst sample decides
    assert metrics.relative_l2(b, a) == pytest.approx(2.0)
    assert metrics.max_abs(b, a) == pytest.approx(4.0)


def test_psnr_and_ssim():
    rng = np.random.default_rng(0)
    ref = rng.random((2, 16, 16, 3))
    noisy = np.clip(ref + rng.normal(0, 0.01, ref.shape), 0, 1)
    mse = ((noisy - ref) ** 2).reshape(2, -1).mean(1)
    assert metrics.psnr(noisy, ref) == pytest.approx(float(np.mean(10 * np.log10(1 / mse))))
    assert metrics.psnr(ref, ref) == 100.0
    assert metrics.ssim(ref, ref) == pytest.approx(1.0)
    assert 0.9 < metrics.ssim(noisy, ref) < 1.0
    assert metrics.ssim(rng.random(ref.shape), ref) < 0.2


def test_non_finite_values_fail_loudly():
    a = np.ones((1, 4))
    bad = a.copy()
    bad[0, 1] = np.nan
    for fn in (metrics.cosine, metrics.relative_l2, metrics.max_abs, metrics.psnr):
        assert math.isnan(fn(bad, a))
    r = GateResult.check("tensor/x/cosine", metrics.cosine(bad, a), 0.999, ">=")
    assert not r.passed and "NaN/Inf" in r.describe()
    r = GateResult.check("tensor/x/max_abs", float("inf"), None, "<=")  # even ungated numbers must be finite
    assert not r.passed


def test_gate_result_says_by_how_much():
    r = GateResult.check("image/psnr", 27.5, 30.0, ">=")
    assert not r.passed and "margin -2.5" in r.describe() and "FAILED" in r.describe()
    assert GateResult.from_json(r.to_json()) == r


def test_quantized_precisions_start_from_their_own_thresholds():
    from fewstep.compile.config import CompileConfig

    int8 = CompileConfig(target="onnxruntime-cpu", precision="int8", gates={"distribution": {"num_images": 500}})
    assert int8.gates.tensor.cosine_min == 0.98 and int8.gates.tensor.max_abs_max is None
    assert int8.gates.distribution.num_images == 500 and int8.gates.distribution.fid_ratio_max == 1.05
    int4 = CompileConfig(target="openvino-cpu", quantization={"scheme": "int4-weights"})
    assert int4.precision == "int4-weights" and int4.gates.image.psnr_min == 22.0
    fp32 = CompileConfig(target="openvino-cpu", gates={"image": {"psnr_min": 40}})
    assert fp32.gates.tensor.cosine_min == 0.999 and fp32.gates.image.psnr_min == 40
    with pytest.raises(ValueError, match="contradicts quantization.scheme"):
        CompileConfig(target="openvino-cpu", precision="int8", quantization={"scheme": "int4-weights"})
