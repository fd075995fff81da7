"""A bundle is closed: every file the runtime opens is relative, inside it, hashed, not a
symlink; malformed manifests are refused by name."""

import shutil

import pytest

from fewstep.runtime.bundle import Bundle, BundleError
from fewstep.testing.tamper import edit_manifest


def outside_file(tmp_path, bundle):
    target = tmp_path / "outside.onnx"
    shutil.copy(bundle / "components" / "transformer.onnx", target)
    return target


CASES = {
    "absolute component file": (
        lambda m, out: m["components"]["transformer"].update(files=[str(out)]),
        "points outside the bundle",
    ),
    "component file via ..": (
        lambda m, out: m["components"]["transformer"].update(files=["../../outside.onnx"]),
        "points outside the bundle",
    ),
    "component file not hashed": (
        lambda m, out: m["components"]["transformer"].update(files=["other.onnx"]),
        "not among the bundle's hashed files",
    ),
    "absolute tokenizer path": (
        lambda m, out: m["pipeline"]["tokenizers"]["text_encoder"].update(path=str(out.parent)),
        "points outside the bundle",
    ),
    "no target": (lambda m, out: m.pop("target"), "target: Field required"),
    "steps as text": (
        lambda m, out: m["pipeline"].update(steps="four"),
        "pipeline.steps: Input should be a valid integer",
    ),
    "unknown field": (lambda m, out: m.update(loader="evil.py"), "loader: Extra inputs are not permitted"),
    "NaN sigma": (lambda m, out: m["pipeline"].update(sigmas=[1.0, float("nan")]), "pipeline.sigmas.1"),
    "format version as text": (lambda m, out: m.update(format_version="2"), "format_version '2' is not an integer"),
    "newer format": (lambda m, out: m.update(format_version=99), "newer than this fewstep reads"),
    "no files table": (lambda m, out: m.pop("files"), "no `files` table"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampered_manifest_is_refused_by_name(bundle, tmp_path, case):
    change, message = CASES[case]
    out = outside_file(tmp_path, bundle)
    edit_manifest(bundle, lambda m: change(m, out))
    with pytest.raises(BundleError, match=message):
        Bundle.open(bundle)
    with pytest.raises(BundleError, match=message):
        Bundle.open(bundle, check=False)  # paths are checked even when hashes are not


def test_symlink_out_of_the_bundle_is_refused(bundle, tmp_path):
    out = outside_file(tmp_path, bundle)
    (bundle / "components" / "transformer.onnx").unlink()
    (bundle / "components" / "transformer.onnx").symlink_to(out)
    with pytest.raises(BundleError, match="symlinks"):
        Bundle.open(bundle)


def test_gate_refuses_a_reference_that_is_not_the_one_recorded(bundle, tmp_path):
    from typer.testing import CliRunner

    from fewstep.cli import app

    edit_manifest(bundle, lambda m: m["source"].update(digest="0" * 64))
    res = CliRunner().invoke(app, ["gate", str(bundle)])
    assert res.exit_code == 2 and "--reference" in res.output
