"""Signed bundles: ed25519 over manifest.json; where a trusted key is required, unsigned bundles,
other keys and manifests changed after signing (the re-hashed tamper) are refused by name."""

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from fewstep.cli import app
from fewstep.runtime.bundle import Bundle, BundleError, bundle_files
from fewstep.runtime.signing import TRUSTED_KEYS_ENV, generate_keypair, sign_manifest
from fewstep.testing.tamper import rehash_tamper


@pytest.fixture
def keys(tmp_path):
    generate_keypair(tmp_path / "a.key", tmp_path / "a.pub")
    generate_keypair(tmp_path / "b.key", tmp_path / "b.pub")
    return tmp_path


def test_keygen_private_key_is_owner_only_and_never_overwritten(keys):
    assert stat.S_IMODE(os.stat(keys / "a.key").st_mode) == 0o600
    with pytest.raises(FileExistsError, match="never overwritten"):
        generate_keypair(keys / "a.key", keys / "c.pub")


def test_signed_bundle_opens_with_its_key_and_the_rehashed_tamper_is_refused(bundle, keys):
    sign_manifest(bundle, keys / "a.key")
    Bundle.open(bundle, trusted_keys=[keys / "a.pub"])
    Bundle.open(bundle, trusted_keys=[keys / "b.pub", keys / "a.pub"])
    rehash_tamper(bundle)
    Bundle.open(bundle)  # hashes alone: accepted (the threat a signature closes)
    with pytest.raises(BundleError, match="does not match its signature"):
        Bundle.open(bundle, trusted_keys=[keys / "a.pub"])


@pytest.mark.parametrize(
    "case, message",
    [
        ("unsigned", "is not signed"),
        ("other key", "not among the trusted keys"),
        ("garbled record", "not a fewstep signature record"),
        ("wrong algorithm", "fewstep verifies ed25519 only"),
    ],
)
def test_signature_problems_are_named(bundle, keys, case, message):
    if case != "unsigned":
        sign_manifest(bundle, keys / ("b.key" if case == "other key" else "a.key"))
    sig = bundle / "manifest.sig"
    if case == "garbled record":
        sig.write_text("{not json")
    if case == "wrong algorithm":
        sig.write_text(json.dumps({**json.loads(sig.read_text()), "algorithm": "rsa"}))
    with pytest.raises(BundleError, match=message):
        Bundle.open(bundle, trusted_keys=[keys / "a.pub"])


def test_the_signature_file_is_not_a_bundle_file(bundle, keys):
    sign_manifest(bundle, keys / "a.key")
    Bundle.open(bundle)  # manifest.sig is not "unexpected"
    assert "manifest.sig" not in bundle_files(bundle)


def test_cli_sign_then_generate_and_gate_require_the_key(bundle, keys, tmp_path, monkeypatch):
    monkeypatch.setenv(TRUSTED_KEYS_ENV, "")  # the CLI sets it for the process: restored after the test
    runner = CliRunner()
    res = runner.invoke(app, ["generate", str(bundle), "a red circle", "-o", str(tmp_path / "x.png"),
                              "--trusted-key", str(keys / "a.pub")])  # fmt: skip
    assert res.exit_code == 2 and "is not signed" in res.output
    res = runner.invoke(app, ["sign", str(bundle), "--key", str(keys / "a.key")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["generate", str(bundle), "a red circle", "-o", str(tmp_path / "x.png"),
                              "--trusted-key", str(keys / "a.pub")])  # fmt: skip
    assert res.exit_code == 0, res.output
    rehash_tamper(bundle)
    res = runner.invoke(app, ["sign", str(bundle), "--key", str(keys / "a.key")])  # still hash-consistent: signs
    assert res.exit_code == 0
    (bundle / "components" / "vae_decoder.onnx").write_bytes(b"changed after signing")
    res = runner.invoke(app, ["sign", str(bundle), "--key", str(keys / "a.key")])
    assert res.exit_code == 2 and "changed: components/vae_decoder.onnx" in res.output


def test_trusted_keys_from_the_environment(bundle, keys, monkeypatch):
    monkeypatch.setenv(TRUSTED_KEYS_ENV, str(keys / "a.pub"))
    with pytest.raises(BundleError, match="is not signed"):
        Bundle.open(bundle)
    sign_manifest(bundle, keys / "a.key")
    Bundle.open(bundle)
