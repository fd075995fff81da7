"""Library output: quiet by default, back with `fewstep --verbose`.

diffusers and transformers print a loading bar per pipeline and per model and INFO/WARNING
lines; NNCF logs an INFO line per op it leaves unquantized and draws a bar per calibration pass.
None of that is fewstep's progress: by default only errors are shown and the libraries' bars
are off (their public switches); fewstep's own bars follow `--no-progress`.
"""

from __future__ import annotations

import logging
import os

_QUIET = {"TRANSFORMERS_VERBOSITY": "error", "DIFFUSERS_VERBOSITY": "error", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}


def configure(verbose: bool = False) -> None:
    """Quiet (default) or verbose library output for this process and the workers it starts."""
    if verbose:
        for key in _QUIET:
            os.environ.pop(key, None)
        return
    for key, value in _QUIET.items():
        os.environ.setdefault(key, value)
    quiet_loaded_libraries()


def quiet_loaded_libraries() -> None:
    """Apply the quiet settings to libraries already imported (their env vars are read at import)."""
    if os.environ.get("DIFFUSERS_VERBOSITY") != "error":
        return
    import sys

    if "diffusers" in sys.modules:
        from diffusers.utils import logging as dlog

        dlog.set_verbosity_error()
        dlog.disable_progress_bar()
    if "transformers" in sys.modules:
        from transformers.utils import logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
    if "nncf" in sys.modules:
        import nncf

        nncf.set_log_level(logging.WARNING)
        if progress_disabled():
            silence_nncf_bars()


def silence_nncf_bars() -> None:
    """NNCF has no public switch for its rich bars: default its `track(disable=...)` to True."""
    try:
        from nncf.common.logging import track_progress
    except ImportError:  # pragma: no cover - another NNCF layout
        return
    cls = track_progress.track
    if getattr(cls, "_fewstep_quiet", False):
        return
    init = cls.__init__

    def quiet_init(self, *args, **kwargs):
        kwargs["disable"] = True
        init(self, *args, **kwargs)

    cls.__init__ = quiet_init
    cls._fewstep_quiet = True


NO_PROGRESS_ENV = "FEWSTEP_NO_PROGRESS"


def disable_progress() -> None:
    """`--no-progress`: no bars at all, fewstep's or a library's (NNCF's calibration bars included)."""
    os.environ[NO_PROGRESS_ENV] = "1"


def progress_disabled() -> bool:
    return os.environ.get(NO_PROGRESS_ENV) == "1"
