"""One registry of precisions: scheme classes, targets and gates all refer to it."""

import pytest

from fewstep.precisions import Precision, default_gates, precision, precisions, register_precision
from fewstep.quantize.config import SCHEME_CLASSES, default_scheme
from fewstep.targets.base import Target
from fewstep.targets.registry import accepting_targets, discover


def test_every_scheme_and_target_precision_is_registered():
    for name in SCHEME_CLASSES:
        assert precision(name).quantized, name
    for entry in discover().values():
        for name in entry.target.precisions:
            precision(name)


def test_default_scheme_follows_the_registry():
    for name, p in precisions().items():
        scheme = default_scheme(name)
        if not p.quantized:
            assert scheme is None
        else:
            assert scheme.scheme == name and scheme.needs_calibration == p.calibrated


def test_gates_start_from_the_precision_and_are_copies():
    g = default_gates("int4-weights")
    assert g["tensor"]["cosine_min"] == 0.95
    g["tensor"]["cosine_min"] = 0.0
    assert default_gates("int4-weights")["tensor"]["cosine_min"] == 0.95
    assert default_gates("fp32") == {}


def test_accepting_targets_reads_the_targets():
    assert "openvino-cpu" in accepting_targets("int4-weights")
    assert "tensorrt" in accepting_targets("fp8") and "openvino-cpu" not in accepting_targets("fp8")


def test_unknown_precision_is_named():
    with pytest.raises(ValueError, match="unknown precision 'int3'.*int8"):
        precision("int3")


def test_a_target_cannot_declare_an_unregistered_precision():
    with pytest.raises(ValueError, match="unknown precision 'int2'"):

        class Bad(Target):  # noqa: F841
            name = "bad"
            extra = "bad"
            precisions = ("fp32", "int2")


def test_registering_a_conflicting_precision_is_refused():
    with pytest.raises(ValueError, match="registered already"):
        register_precision(Precision("int8", "weights", False))
