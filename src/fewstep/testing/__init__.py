"""Conformance suite a target vendor runs against their own target (`fewstep conformance NAME`)."""

from fewstep.testing.conformance import CheckResult, run_conformance

__all__ = ["CheckResult", "run_conformance"]
