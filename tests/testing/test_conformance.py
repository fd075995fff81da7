import pytest
from typer.testing import CliRunner

from fewstep.cli import app
from fewstep.testing import run_conformance


@pytest.mark.parametrize("target", ["onnxruntime-cpu", "openvino-cpu"])
def test_builtin_cpu_targets_pass_the_conformance_suite(tmp_path, target):
    """Every built-in CPU target, fp32 and a quantized precision: no declared failures."""
    results = run_conformance(target, ["fp32", "int8-weights"], work=tmp_path)
    assert {r.check for r in results} == {
        "build",
        "gates pass",
        "reload, deterministic generation",
        "tampered bundle refused",
    }
    assert all(r.passed for r in results), [r for r in results if not r.passed]


def test_conformance_reports_a_failing_target(monkeypatch, tmp_path):
    from fewstep.targets import registry
    from fewstep.targets.onnxruntime_cpu import OnnxRuntimeCPU, OrtSession

    class Broken(OnnxRuntimeCPU):  # a vendor bug: outputs come back scrambled
        name = "broken-vendor"

        def load(self, folder, files, io, threads=None):
            session = super().load(folder, files, io, threads)

            class Scrambled(OrtSession):
                def run(self, feeds):
                    return {k: v[..., ::-1].copy() for k, v in session.run(feeds).items()}

            return Scrambled(session.session)

    monkeypatch.setattr(registry, "_EXTRA", {})
    registry.register_target(Broken)
    results = run_conformance("broken-vendor", ["fp32"], work=tmp_path)
    assert not next(r for r in results if r.check == "gates pass").passed
    res = CliRunner().invoke(app, ["conformance", "broken-vendor", "-p", "fp32"])
    assert res.exit_code == 1 and "FAILED" in res.output
