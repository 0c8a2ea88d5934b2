"""Build script for pygan.

Metadata lives in pyproject.toml. This file exists for the compiled extensions: the CUDA
kernels of csrc/ (built with nvcc where it is found) and their CPU emulator. Until those land,
pygan is pure Python and installs the same with or without nvcc on the PATH.
"""
from setuptools import setup

setup()
