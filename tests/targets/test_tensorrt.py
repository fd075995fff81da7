import copy
import importlib.util

import numpy as np
import pytest
import torch

from fewstep.compile.steps import quantize_for
from fewstep.components import pipeline_components
from fewstep.quantize.config import Int8Config, ModelOptConfig
from fewstep.sd3_pipeline import load_pipeline
from fewstep.targets.base import ComponentIO, TensorSpec
from fewstep.targets.registry import get_target
from fewstep.targets.tensorrt_plan import engine_plan

# only the ModelOpt numerics need ModelOpt: engine plans and the "no SDK" message are tested everywhere
needs_modelopt = pytest.mark.skipif(
    importlib.util.find_spec("modelopt") is None, reason="nvidia-modelopt is not installed"
)
HAS_TRT = importlib.util.find_spec("tensorrt") is not None
HAS_CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def transformer(tiny_student_dir):
    comp = pipeline_components(load_pipeline(tiny_student_dir))["transformer"]
    gen = torch.Generator().manual_seed(0)
    names = [t.name for t in comp.io.inputs]
    items = []
    for t in (1.0, 0.75):  # calibration at the student's timesteps
        ex = [torch.randn(x.shape, generator=gen) for x in comp.example]
        ex[1] = torch.full_like(comp.example[1], t * 1000)
        items.append({n: x.numpy() for n, x in zip(names, ex)})
    return comp, items


def cosine(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@needs_modelopt
@pytest.mark.parametrize(
    ("scheme", "floor"),
    [
        (Int8Config(), 0.999),
        (ModelOptConfig(scheme="int8-sq"), 0.999),
        (ModelOptConfig(scheme="fp8"), 0.995),
        (ModelOptConfig(scheme="int4-awq"), 0.995),
    ],
    ids=lambda v: getattr(v, "scheme", ""),
)
def test_modelopt_fake_quant_numerics_on_cpu(transformer, scheme, floor):
    comp, items = transformer
    target = get_target("tensorrt")
    feeds = items[0]
    args = [torch.from_numpy(feeds[t.name]) for t in comp.io.inputs]
    with torch.no_grad():
        ref = comp.module(*args).numpy()
        q = quantize_for(target, copy.deepcopy(comp.module), comp.io, scheme, items, None)
        out = q(*args).numpy()
    assert floor < cosine(out, ref) < 1.0  # quantized: close to fp32, not identical


@needs_modelopt
def test_int8_qdq_onnx_runs_in_onnxruntime(transformer, tmp_path):
    import onnx
    import onnxruntime as ort

    from fewstep.compile.export import export_onnx

    comp, items = transformer
    comp = copy.copy(comp)
    comp.module = quantize_for(get_target("tensorrt"), copy.deepcopy(comp.module), comp.io, Int8Config(), items, None)
    export_onnx(comp, tmp_path / "t.onnx")
    ops = {n.op_type for n in onnx.load(str(tmp_path / "t.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # explicit Q/DQ for a strongly typed network
    feeds = items[1]
    # the Q/DQ graph itself, executed as written (no fusion into ORT's int8 kernels, whose u8 x s8
    # products saturate on CPUs without VNNI: TensorRT runs this graph on a GPU, not MLAS)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    out = ort.InferenceSession(str(tmp_path / "t.onnx"), opts).run(None, feeds)[0]
    with torch.no_grad():
        fake = comp.module(*(torch.from_numpy(feeds[t.name]) for t in comp.io.inputs)).numpy()
    assert cosine(out, fake) > 0.9999


def test_engine_plan_profiles_and_precision_flags():
    io = ComponentIO(
        "transformer",
        (TensorSpec("hidden_states", ("batch", 4, 8, 8)), TensorSpec("timestep", ("batch",))),
        ("sample",),
    )
    plan = engine_plan(io, "fp16", (1, 2, 8))
    assert plan.flags == ["FP16"] and not plan.strongly_typed
    assert plan.profiles["hidden_states"] == ((1, 4, 8, 8), (2, 4, 8, 8), (8, 4, 8, 8))
    assert plan.profiles["timestep"] == ((1,), (2,), (8,))
    for p in ("int8", "fp8", "int4-awq", "int8-sq"):
        q = engine_plan(io, p)
        assert q.strongly_typed and q.flags == []  # precision comes from the Q/DQ graph
    static = ComponentIO(io.name, io.inputs, io.outputs, {"batch": 2})
    assert engine_plan(static, "bf16").profiles["timestep"] == ((2,), (2,), (2,))
    with pytest.raises(ValueError, match="min <= opt <= max"):
        engine_plan(io, "fp16", (4, 2, 8))
    with pytest.raises(ValueError, match="allowed: fp16, bf16, fp32, int8"):
        engine_plan(io, "int3")


def test_tensorrt_target_without_sdk_says_how_to_install(tiny_student_dir, tmp_path):
    target = get_target("tensorrt")
    assert target.info()["export_format"] == "onnx-qdq" and "fp8" in target.precisions
    if HAS_TRT:
        pytest.skip("TensorRT is installed here")
    assert "pypi.nvidia.com" in target.unavailable_reason()
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig

    with pytest.raises(ImportError, match=r"pip install 'fewstep\[tensorrt\]'"):
        compile_bundle(tiny_student_dir, CompileConfig(target="tensorrt", precision="fp8"), tmp_path / "b")


@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_TRT and HAS_CUDA), reason="needs TensorRT and an NVIDIA GPU")
def test_tensorrt_bundle_end_to_end(tiny_student_dir, tmp_path):  # pragma: no cover
    from fewstep.compile.api import compile_bundle
    from fewstep.compile.config import CompileConfig

    for precision in ("fp16", "int8", "fp8"):
        cfg = CompileConfig(
            target="tensorrt",
            precision=precision,
            measure=False,
            gates={
                "num_prompts": 2,
                "distribution": {"enabled": False},
                "tensor": {"cosine_min": 0.98, "rel_l2_max": 0.25, "max_abs_max": None},
                "image": {"psnr_min": 25, "ssim_min": 0.9},
            },
        )
        _, report = compile_bundle(tiny_student_dir, cfg, tmp_path / precision)
        assert report.passed, [r.describe() for r in report.failures()]
