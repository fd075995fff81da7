"""Bundle signatures: `keygen` and `sign` (verification is `--trusted-key` on generate/gate/eval)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fewstep.cli.app import app, fail, out


@app.command("keygen")
def keygen(
    private: Annotated[Path, typer.Option("--private", help="private key to write (PEM, mode 0600)")],
    public: Annotated[Path, typer.Option("--public", help="public key to write (PEM): what deployments trust")],
) -> None:
    """Create an ed25519 key pair for signing bundles (existing files are never overwritten)."""
    from fewstep.runtime.signing import generate_keypair

    try:
        kid = generate_keypair(private, public)
    except (FileExistsError, FileNotFoundError) as e:
        fail(str(e))
    out.print(f"key {kid}: private {private}, public {public}", highlight=False)


@app.command("sign")
def sign(
    bundle: Annotated[Path, typer.Argument(help="bundle directory")],
    key: Annotated[Path, typer.Option("--key", help="ed25519 private key (PEM), e.g. from `fewstep keygen`")],
) -> None:
    """Sign a bundle's manifest (after checking every file against it): deployments that pass
    `--trusted-key` refuse bundles changed after signing."""
    from fewstep.runtime.bundle import BundleError, read_manifest
    from fewstep.runtime.signing import sign_manifest

    try:
        read_manifest(bundle, check=True, trusted_keys=[])  # sign only what matches its manifest
        kid = sign_manifest(bundle, key)
    except (BundleError, FileNotFoundError) as e:
        fail(str(e))
    out.print(f"signed {bundle} with key {kid}", highlight=False)
