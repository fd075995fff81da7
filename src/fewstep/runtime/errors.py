"""The runtime's error type for bundles that cannot be used."""


class BundleError(RuntimeError):
    """A bundle that cannot be used (missing, tampered with, unsigned where a signature is
    required, or made by an unknown format)."""
