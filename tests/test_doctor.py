"""`fewstep doctor`'s CPU report: what the int8 defaults resolve to on this CPU."""

import pytest

from fewstep import doctor
from fewstep.cpu.isa import get_isa


@pytest.mark.parametrize(
    ("isa", "attention", "vnni"),
    [
        ("avx512_core_amx", "float", True),
        ("avx512_core_bf16", "int8", True),
        ("avx2", "int8", False),
        (None, "int8", False),
    ],
)
def test_cpu_report_says_what_auto_attention_gives_a_native_bf16_bundle(monkeypatch, isa, attention, vnni):
    level = get_isa(isa) if isa else None
    monkeypatch.setattr(doctor, "detect", lambda: level)
    monkeypatch.setattr(doctor, "effective", lambda: level)
    report = doctor.cpu_report()
    assert report["effective_isa"] == isa and report["int8_vnni"] is vnni
    assert report["int8_attention_bf16"] == attention
