"""A bundle's integrity: its typed manifest is read, every path it names stays inside the bundle
and among its hashed files, no file is a symlink, and (unless asked not to) every file's sha256
matches the manifest."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fewstep.fsutil import hash_tree
from fewstep.runtime.errors import BundleError
from fewstep.runtime.manifest import FORMAT, MANIFEST, BundleManifest, ManifestError, parse_manifest
from fewstep.runtime.signing import SIGNATURE, check_signature, trusted_keys_from_env

__all__ = ["BundleError", "bundle_files", "check_closed", "is_bundle", "read_manifest", "verify"]


def is_bundle(path: str | Path) -> bool:
    f = Path(path) / MANIFEST
    if not f.is_file():
        return False
    try:
        data = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def bundle_files(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` (hidden ones too) except the manifest, by relative path."""
    return hash_tree(root, hidden=True, exclude=frozenset({MANIFEST, SIGNATURE}))


def verify(root: Path, manifest: BundleManifest) -> None:
    """Raise BundleError naming every file that is missing, extra or changed."""
    expected = manifest.files
    actual = bundle_files(root)
    problems = [f"missing: {p}" for p in sorted(set(expected) - set(actual))]
    problems += [f"changed: {p}" for p in sorted(set(expected) & set(actual)) if expected[p] != actual[p]]
    problems += [f"unexpected: {p}" for p in sorted(set(actual) - set(expected))]
    if problems:
        raise BundleError(f"bundle {root} does not match its manifest ({'; '.join(problems)}); rebuild it")


def _inside(rel: Any, where: str) -> str:
    """A manifest path: relative, POSIX, no `..`, no drive; else BundleError naming the field."""
    from pathlib import PurePosixPath

    if not isinstance(rel, str) or not rel or "\\" in rel:
        raise BundleError(f"manifest {where}: {str(rel)[:80]!r} is not a relative path inside the bundle")
    parts = PurePosixPath(rel).parts
    if PurePosixPath(rel).is_absolute() or ".." in parts or ":" in parts[0]:
        raise BundleError(f"manifest {where}: {rel[:80]!r} points outside the bundle; only relative paths are read")
    return rel


def check_closed(root: Path, manifest: BundleManifest) -> None:
    """Every file the runtime will open is named relative to the bundle, inside it, in the hashed
    `files` set, and no path in the bundle is a symlink (which could lead outside it)."""
    files = manifest.files
    if not files:
        raise BundleError(f"{root / MANIFEST}: no `files` table; rebuild the bundle")
    for rel in files:
        _inside(rel, "files")
    links = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_symlink()]
    if links:
        raise BundleError(f"bundle {root} holds symlinks ({', '.join(sorted(links)[:5])}); a bundle is plain files")
    for name, comp in manifest.components.items():
        for f in comp.files:
            rel = ("" if comp.layout else "components/") + _inside(f, f"components.{name}.files")
            if rel not in files:
                raise BundleError(f"manifest components.{name}.files: {f!r} is not among the bundle's hashed files")
    for name, spec in manifest.pipeline.tokenizers.items():
        rel = _inside(spec.path, f"pipeline.tokenizers.{name}.path").rstrip("/") + "/tokenizer.json"
        if rel not in files:
            raise BundleError(f"manifest pipeline.tokenizers.{name}.path: {rel!r} is not among the hashed files")


def read_manifest(root: Path, check: bool = True, trusted_keys: Sequence[Path] | None = None) -> BundleManifest:
    """The bundle's typed manifest, its paths checked to stay inside it (and, with `check`, every
    file's sha256 checked against it). With trusted keys (given, or from FEWSTEP_TRUSTED_KEYS) the
    manifest's bytes must carry a valid signature by one of them; the bytes checked are the bytes
    parsed."""
    root = Path(root)
    if not (root / MANIFEST).is_file():
        raise BundleError(f"not a fewstep bundle (no {MANIFEST}): {root}")
    raw = (root / MANIFEST).read_bytes()
    keys = trusted_keys_from_env() if trusted_keys is None else list(trusted_keys)
    if keys:
        check_signature(root, raw, keys)
    try:
        data = json.loads(raw)
        manifest = parse_manifest(data, root / MANIFEST)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{root / MANIFEST}: not valid JSON ({e})") from None
    except ManifestError as e:
        raise BundleError(str(e)) from None
    check_closed(root, manifest)
    if check:
        verify(root, manifest)
    return manifest
