# Only what pyproject.toml cannot say: the cffi extension, compiled at install (API mode, out of line).
from setuptools import setup

setup(cffi_modules=["src/rmqstore/_native/build.py:ffibuilder"])
