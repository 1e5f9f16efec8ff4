"""The one thing pyproject.toml cannot declare: the cffi extension hftlab._core.

hftlab/_build_core.py compiles kernel_src/core/*.c where they live (no copies).
Everything else about the package is in pyproject.toml.
"""
from setuptools import setup

setup(cffi_modules=["hftlab/_build_core.py:ffibuilder"])
