"""Timestep phases stay f32 in fewstep's OpenVINO IRs: under a bf16 compile and fp16 weights."""

import numpy as np
import pytest

ov = pytest.importorskip("openvino")

from fewstep.gates.metrics import cosine  # noqa: E402
from fewstep.targets.openvino_phases import PRECISE, keep_phases_f32, phase_subgraph  # noqa: E402

LATE, EARLY = 858.0, 37.5  # 858 is not a bf16 value (856 and 860 are); 37.5 is


def _time_embedding(batch=None):
    """diffusers' Timesteps(256, flip_sin_to_cos=True) + the first Linear and SiLU of the MLP, as
    torch's ONNX export leaves it: Unsqueeze -> Mul -> Sin/Cos -> Concat -> Slice x2 -> Concat."""
    from openvino import opset13 as ops

    rng = np.random.default_rng(0)
    half = 128
    t = ops.parameter([batch or -1], np.float32, name="timestep")
    freq = np.exp(-np.log(10000.0) * np.arange(half) / half).astype(np.float32)[None]
    phase = ops.multiply(ops.unsqueeze(t, ops.constant(np.array([1], np.int64))), ops.constant(freq))
    emb = ops.concat([ops.sin(phase), ops.cos(phase)], 1)
    cut = [ops.slice(emb, ops.constant([a]), ops.constant([b]), ops.constant([1]), ops.constant([1])) for a, b in
           ((half, 2 * half), (0, half))]  # fmt: skip
    flipped = ops.concat(cut, 1)
    w = (rng.standard_normal((2 * half, 512)) / 16).astype(np.float32)
    hidden = ops.swish(ops.matmul(flipped, ops.constant(w), False, False))
    w2 = (rng.standard_normal((512, 512)) / 22).astype(np.float32)
    return ov.Model([ops.matmul(hidden, ops.constant(w2), False, False)], [t])


def _run(xml_or_model, hint, t, batch=1):
    compiled = ov.Core().compile_model(xml_or_model, "CPU", {"INFERENCE_PRECISION_HINT": hint})
    return compiled({"timestep": np.full((batch,), t, np.float32)})[0]


def test_the_phase_subgraph_is_the_embedding_and_nothing_past_its_linear():
    model = _time_embedding()
    kinds = sorted(n.get_type_name() for n in phase_subgraph(model))
    assert kinds == ["Concat", "Concat", "Cos", "Multiply", "Sin", "Slice", "Slice", "Unsqueeze"]
    assert keep_phases_f32(model) == 8
    ops = model.get_ordered_ops()
    assert not [n for n in ops if n.get_type_name() == "Unsqueeze"]  # the plugin would drop its mark
    marked = {n.get_type_name() for n in ops if PRECISE in n.get_rt_info()}
    assert marked == {"Reshape", "Multiply", "Sin", "Cos", "Concat", "Slice", "Constant"}  # not MatMul, Swish
    consts = [list(n.get_shape()) for n in ops if n.get_type_name() == "Constant" and PRECISE in n.get_rt_info()]
    assert consts == [[1, 128]]  # the frequency table; not the Linears' weights, nor integer indices


def test_an_activation_quantizer_after_the_phases_stays_the_quantizers():
    """In a W8A8 transformer NNCF puts FakeQuantize between the embedding and its Linear: the walk
    stops there (the quantizer belongs to the int8 MatMul's input), as at the MatMul itself."""
    from openvino import opset13 as ops

    t = ops.parameter([1], np.float32, name="timestep")
    phase = ops.multiply(
        ops.unsqueeze(t, ops.constant(np.array([1], np.int64))), ops.constant(np.ones((1, 16), np.float32))
    )
    lo, hi = ops.constant(np.float32(-1)), ops.constant(np.float32(1))
    fq = ops.fake_quantize(ops.concat([ops.sin(phase), ops.cos(phase)], 1), lo, hi, lo, hi, 256)
    out = ops.matmul(ops.concat([fq, fq], 1), ops.constant(np.ones((64, 4), np.float32)), False, False)
    kinds = {n.get_type_name() for n in phase_subgraph(ov.Model([out], [t]))}
    assert kinds == {"Unsqueeze", "Multiply", "Sin", "Cos", "Concat"}  # not the FakeQuantize, nor the Concat after it


def test_a_model_without_phases_is_untouched():
    from openvino import opset13 as ops

    x = ops.parameter([2, 8], np.float32, name="x")
    model = ov.Model([ops.swish(ops.matmul(x, ops.constant(np.eye(8, dtype=np.float32)), False, False))], [x])
    assert keep_phases_f32(model) == 0


def test_marks_are_written_to_the_ir_and_change_no_f32_result(tmp_path):
    model = _time_embedding()
    ref = [_run(model, "f32", t, batch=3) for t in (LATE, EARLY)]
    keep_phases_f32(model)
    xml = tmp_path / "m.xml"
    ov.save_model(model, str(xml), compress_to_fp16=False)
    assert xml.read_text().count('name="DisablePrecisionConversion"') == 9  # and the table
    for t, want in zip((LATE, EARLY), ref):  # the Reshape is the Unsqueeze: dynamic batch included
        np.testing.assert_array_equal(_run(str(xml), "f32", t, batch=3), want)


def test_fp16_weights_keep_the_frequency_table_f32(tmp_path):
    from fewstep.targets.openvino_cpu import save_ir

    exact = _run(_time_embedding(), "f32", 1000.0)
    plain = save_ir(_time_embedding(), tmp_path / "plain.xml", compress_to_fp16=True)
    model = _time_embedding()
    keep_phases_f32(model)
    kept = save_ir(model, tmp_path / "kept.xml", compress_to_fp16=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".phases-")]  # the scratch IR is gone

    def table_type(xml):
        consts = [n for n in ov.Core().read_model(str(xml)).get_ordered_ops() if n.get_type_name() == "Constant"]
        return next(n.get_element_type() for n in consts if list(n.get_shape()) == [1, 128])

    assert table_type(plain) == ov.Type.f16 and table_type(kept) == ov.Type.f32
    assert cosine(_run(str(plain), "f32", 1000.0), exact) < 0.9995  # the phases are off by up to 0.5 rad
    assert cosine(_run(str(kept), "f32", 1000.0), exact) > 0.99999  # the other weights are fp16


def test_bf16_compile_keeps_the_phases(tmp_path):
    from fewstep.targets.openvino_cpu import bf16_available

    if not bf16_available(ov.Core()):
        pytest.skip("OpenVINO computes no bf16 on this CPU")
    plain, kept = tmp_path / "plain.xml", tmp_path / "kept.xml"
    ov.save_model(_time_embedding(), str(plain), compress_to_fp16=False)
    model = _time_embedding()
    keep_phases_f32(model)
    ov.save_model(model, str(kept), compress_to_fp16=False)
    exact = _run(str(plain), "f32", LATE)
    assert cosine(_run(str(plain), "bf16", LATE), exact) < 0.99  # 858 computed as 856
    assert cosine(_run(str(kept), "bf16", LATE), exact) > 0.99995  # only the Linears' own rounding
    for path in (plain, kept):  # where bf16 holds t exactly, both are fine
        assert cosine(_run(str(path), "bf16", EARLY), _run(str(path), "f32", EARLY)) > 0.9999


def test_a_built_transformer_runs_its_phases_at_f32_under_bf16(built_bundles, tmp_path):
    """The tiny SD3 transformer as `compile` builds it (`OpenVINOCPU.build` marks it): at bf16 it
    stays at the f32 result at a timestep bf16 cannot hold; the same IR with the marks removed
    does not (the defect every bf16 bundle had, and stock exports have)."""
    import re

    from fewstep.targets.openvino_cpu import bf16_available

    out, _ = built_bundles["openvino-cpu"]
    xml = out / "components" / "transformer.xml"
    text = xml.read_text()
    assert text.count('name="DisablePrecisionConversion"') >= 9
    if not bf16_available(ov.Core()):
        pytest.skip("OpenVINO computes no bf16 on this CPU")
    stripped = tmp_path / "transformer.xml"
    stripped.write_text(re.sub(r'\s*<attribute name="DisablePrecisionConversion"[^>]*/>', "", text))
    (tmp_path / "transformer.bin").symlink_to(xml.with_suffix(".bin"))
    core, rng = ov.Core(), np.random.default_rng(0)

    def velocity(path, hint, t):
        compiled = core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": hint})
        feeds = {p.get_any_name(): rng.standard_normal(list(p.get_shape())).astype(np.float32) for p in compiled.inputs}
        feeds["timestep"] = np.full(feeds["timestep"].shape, t, np.float32)
        return compiled(feeds)[0]

    def agreement(path, t):
        state = rng.bit_generator.state
        bf16 = velocity(path, "bf16", t)
        rng.bit_generator.state = state  # the same inputs for both runs
        return cosine(bf16, velocity(path, "f32", t))

    kept, lost = agreement(xml, LATE), agreement(stripped, LATE)
    assert lost < 0.9999 < kept, (kept, lost)  # measured 0.99974 / 0.99999
