"""x86 instruction-set levels and how to run a runtime as a CPU of a lower level (torch-free)."""
