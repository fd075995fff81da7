import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

from fewstep.targets import registry
from fewstep.targets.base import Target


def test_builtins_listed_through_entry_points_without_importing_sdks():
    code = (
        "import sys; from fewstep.targets.registry import discover; d = discover(); "
        "print(sorted(d)); print([m for m in ('openvino', 'onnxruntime', 'tensorrt', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert {"openvino-cpu", "onnxruntime-cpu", "onnxruntime-cuda"} <= set(eval(out[0]))
    assert eval(out[1]) == []  # listing imports no vendor SDK (and not torch)
    sources = {n: e.source for n, e in registry.discover().items()}
    assert sources["openvino-cpu"] == "fewstep.targets.openvino_cpu:OpenVINOCPU"


def test_broken_plugin_is_reported_not_fatal(monkeypatch):
    real = registry.entry_points

    def fake(group):
        eps = list(real(group=group))
        eps.append(EntryPoint("vendor-npu", "no_such_vendor_module:Target", group))
        eps.append(EntryPoint("not-a-target", "fewstep.targets.base:TensorSpec", group))
        return eps

    monkeypatch.setattr(registry, "entry_points", fake)
    found = registry.discover()
    assert found["vendor-npu"].target is None and "ModuleNotFoundError" in found["vendor-npu"].error
    assert "not a fewstep.targets.Target" in found["not-a-target"].error
    assert found["openvino-cpu"].target is not None  # the others still load
    with pytest.raises(RuntimeError, match="vendor-npu.*failed to load"):
        registry.get_target("vendor-npu")


def test_unknown_target_lists_allowed():
    with pytest.raises(ValueError, match="allowed: .*onnxruntime-cpu.*openvino-cpu"):
        registry.get_target("tpu-v9")


def test_in_process_target_and_missing_extra(monkeypatch):
    class FakeTarget(Target):
        name = "fake-accel"
        extra = "fake"
        requires = ("fake_vendor_sdk_xyz",)

        def build(self, model, io, precision, out_dir):
            return []

        def load(self, folder, files, io, threads=None):
            raise NotImplementedError

    monkeypatch.setattr(registry, "_EXTRA", {})
    registry.register_target(FakeTarget)
    target = registry.get_target("fake-accel")
    assert target.missing() == ["fake_vendor_sdk_xyz"]
    assert "pip install 'fewstep[fake]'" in target.unavailable_reason()
    with pytest.raises(ImportError, match=r"pip install 'fewstep\[fake\]'"):
        target.require()
    with pytest.raises(ValueError, match="allowed: fp32"):
        target.check_precision("int3")
    assert registry.discover()["fake-accel"].to_json()["status"] == "missing fake_vendor_sdk_xyz"
