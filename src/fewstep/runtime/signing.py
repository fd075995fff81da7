"""Bundle signatures: ed25519 over the exact bytes of `manifest.json` (which holds the sha256 of
every other file), stored beside it in `manifest.sig`. A bundle whose files were changed *and*
re-hashed into a rewritten manifest no longer matches its signature; where a trusted key is
required (`trusted_keys=` or `FEWSTEP_TRUSTED_KEYS`, paths joined by the OS path separator), an
unsigned bundle, one signed by another key, or one whose manifest changed after signing is refused.

Keys are PEM files: `fewstep keygen` writes a private key (mode 0600) and its public key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from fewstep.runtime.errors import BundleError
from fewstep.runtime.manifest import MANIFEST

SIGNATURE = "manifest.sig"
TRUSTED_KEYS_ENV = "FEWSTEP_TRUSTED_KEYS"
ALGORITHM = "ed25519"


def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise BundleError("bundle signatures need the `cryptography` package: pip install cryptography") from e
    return serialization, ed25519


def key_id(public_key) -> str:
    """sha256 of the raw 32-byte public key, first 16 hex digits."""
    serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(private_path: Path, public_path: Path) -> str:
    """Write a new ed25519 key pair as PEM (the private key readable by its owner only); existing
    files are never overwritten. Returns the key id."""
    serialization, ed25519 = _crypto()
    for p in (private_path, public_path):
        if Path(p).exists():
            raise FileExistsError(f"{p} exists; a key file is never overwritten")
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem)
    Path(public_path).write_bytes(public_pem)
    return key_id(key.public_key())


def _load_private(path: Path):
    serialization, ed25519 = _crypto()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"private key not found: {path}")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        raise BundleError(f"{path}: not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise BundleError(f"{path}: not an ed25519 key (fewstep signs with ed25519)")
    return key


def load_public(path: Path):
    serialization, ed25519 = _crypto()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trusted key not found: {path}")
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except ValueError as e:
        raise BundleError(f"{path}: not a PEM public key ({e})") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise BundleError(f"{path}: not an ed25519 public key")
    return key


def trusted_keys_from_env() -> list[Path]:
    value = os.environ.get(TRUSTED_KEYS_ENV, "")
    return [Path(p) for p in value.split(os.pathsep) if p]


def sign_manifest(root: Path, private_key: Path) -> str:
    """Sign `root/manifest.json` as it is now; returns the key id. (Verify the bundle first: a
    signature vouches for the hashes in the manifest, so sign only what you checked.)"""
    key = _load_private(private_key)
    raw = (Path(root) / MANIFEST).read_bytes()
    record = {
        "algorithm": ALGORITHM,
        "key_id": key_id(key.public_key()),
        "manifest_sha256": hashlib.sha256(raw).hexdigest(),
        "signature": base64.b64encode(key.sign(raw)).decode(),
    }
    tmp = Path(root) / f".{SIGNATURE}.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(Path(root) / SIGNATURE)
    return record["key_id"]


def check_signature(root: Path, manifest_bytes: bytes, trusted: Sequence[Path]) -> str:
    """Raise BundleError unless `manifest_bytes` carry a valid signature by one of `trusted`;
    returns the signing key's id."""
    from cryptography.exceptions import InvalidSignature

    keys = {key_id(k): k for k in (load_public(p) for p in trusted)}
    sig_path = Path(root) / SIGNATURE
    if not sig_path.is_file():
        raise BundleError(f"bundle {root} is not signed, and a trusted key is required; sign it with `fewstep sign`")
    try:
        record = json.loads(sig_path.read_text())
        algorithm, kid, signature = record["algorithm"], record["key_id"], base64.b64decode(record["signature"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise BundleError(f"{sig_path}: not a fewstep signature record") from None
    if algorithm != ALGORITHM:
        raise BundleError(f"{sig_path}: algorithm {str(algorithm)[:40]!r}; fewstep verifies {ALGORITHM} only")
    if kid not in keys:
        raise BundleError(
            f"bundle {root} is signed by key {str(kid)[:16]!r}, which is not among the trusted keys "
            f"({', '.join(keys) or 'none'})"
        )
    try:
        keys[kid].verify(signature, manifest_bytes)
    except InvalidSignature:
        raise BundleError(
            f"bundle {root}: manifest.json does not match its signature (changed after signing); rebuild and re-sign it"
        ) from None
    return kid
