"""Error types shared across layers (torch-free, so the CLI can name them without loading torch)."""


class ModelError(ValueError):
    """A model directory that cannot be loaded safely; the message names the file."""
