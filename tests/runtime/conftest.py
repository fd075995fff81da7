import shutil

import pytest


@pytest.fixture
def bundle(built_bundles, tmp_path):
    """A private copy of the tiny student's ONNX Runtime bundle, free to tamper with."""
    src, _ = built_bundles["onnxruntime-cpu"]
    dst = tmp_path / "bundle"
    shutil.copytree(src, dst)
    return dst
