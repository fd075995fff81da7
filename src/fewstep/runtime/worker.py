"""`python -m fewstep.runtime.worker BUNDLE`: serve a bundle's components over stdin/stdout
(length-prefixed npz, see `restrict.py`), under whatever ISA restriction it was started with.
The first message reports the int8 saturation probe and the float fidelity probe."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fewstep.runtime.worker")
    parser.add_argument("bundle")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    # the protocol owns the real stdout; anything a library prints goes to stderr
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    proto_in = sys.stdin.buffer

    from fewstep.runtime.bundle import Bundle
    from fewstep.runtime.probe import float_math_faithful, int8_saturates
    from fewstep.runtime.restrict import recv, send
    from fewstep.targets.registry import get_target

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the caller gates the ISA requirement itself
        bundle = Bundle.open(args.bundle, threads=args.threads, allow_isa_mismatch=True)
    target = get_target(bundle.manifest.target)
    sat, faithful = int8_saturates(target), float_math_faithful(target)
    hello = {
        "saturates": np.array(-1 if sat is None else int(sat)),
        "faithful": np.array(-1 if faithful is None else int(faithful)),
    }
    send(proto_out, hello)
    while True:
        try:
            request = recv(proto_in)
        except EOFError:
            return 0
        name = str(request.pop("__component__"))
        try:
            send(proto_out, bundle.sessions[name].run(request))
        except Exception as e:  # reported to the caller, which raises it with the ISA named
            send(proto_out, {"__error__": np.array(f"{type(e).__name__}: {e}")})


if __name__ == "__main__":
    sys.exit(main())
