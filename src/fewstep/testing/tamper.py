"""Tampering with a bundle the way an attacker or a careless user would, for tests and the
reliability benchmark: rewrite manifest fields, or change a file and re-hash the manifest so that
hashes alone no longer catch it (only a signature does)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fewstep.runtime.bundle import bundle_files


def edit_manifest(bundle: Path, fn: Callable[[dict[str, Any]], Any]) -> None:
    """Apply `fn` to the manifest's JSON in place."""
    path = Path(bundle) / "manifest.json"
    manifest = json.loads(path.read_text())
    fn(manifest)
    path.write_text(json.dumps(manifest, indent=2))


def rehash_tamper(bundle: Path, file: str = "components/vae_decoder.onnx") -> None:
    """Flip a byte of `file` and rewrite the manifest's hashes to match."""
    f = Path(bundle) / file
    data = bytearray(f.read_bytes())
    data[-100] ^= 0xFF
    f.write_bytes(bytes(data))
    edit_manifest(bundle, lambda m: m.update(files=bundle_files(bundle)))
