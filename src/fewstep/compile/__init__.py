"""Compile: restructure, export, calibrate, quantize, build and gate a bundle (`build.compile_bundle`)."""
