"""What a failed f32-twin gate's recorded twin says (`GateReport.advice`)."""

from fewstep.gates.check import GateReport
from fewstep.gates.config import GateResult


def _report(where: str, own: float, twin: float, between: float) -> GateReport:
    return GateReport(
        [
            GateResult.check(f"{where}/cosine", own, 0.98, ">="),
            GateResult.check(f"{where}/cosine_vs_f32", between, 0.999, ">="),
            GateResult.check(f"{where}/f32_twin_cosine", twin, None, ">="),
        ]
    )


def test_a_run_as_close_to_torch_as_its_twin_is_told_apart_from_a_wrong_one():
    # the 512 px int8 VAE decoder at bf16 (measured): as close to torch as at f32
    vae = _report("tensor/vae_decoder", 0.998689, 0.998700, 0.998164)
    [line] = vae.advice()
    assert line.startswith("tensor/vae_decoder: as close to torch as its f32 twin (0.99869 vs 0.99870)")
    assert "`component_inference_precision: {vae_decoder: f32}`" in line
    # the whole 512 px transformer with the timestep rounded (measured; its twin near 0.9997)
    rounded = _report("tensor/transformer@t=0.858", 0.99813, 0.99970, 0.99815)
    [line] = rounded.advice()
    assert line.startswith("tensor/transformer@t=0.858: farther from torch than its f32 twin")
    assert "{transformer: f32}" in line


def test_no_advice_without_a_failed_twin_gate_or_its_record():
    assert _report("tensor/vae_decoder", 0.9999, 0.9999, 0.9995).advice() == []  # passed
    no_twin = GateReport([GateResult.check("tensor/vae_decoder/cosine_vs_f32", 0.99, 0.999, ">=")])
    assert no_twin.advice() == []  # a report from before the record: nothing to say
    isa = _report("avx2:tensor/text_encoder/text_embeds", 0.99, 0.999, 0.99)
    assert "{text_encoder: f32}" in isa.advice()[0]  # ISA-prefixed and per-output names
