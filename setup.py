# Only what pyproject.toml cannot say: the compiled modules, built at install. The cffi one holds
# the hot paths (API mode, out of line); _messages is plain C API because it makes Python objects.
from setuptools import Extension, setup

MESSAGES = Extension(
    "rmqstore._native._messages",
    sources=["src/rmqstore/_native/messages.c"],
    include_dirs=["src/rmqstore/_native"],
    define_macros=[("Py_LIMITED_API", "0x030B0000")],
    py_limited_api=True,
    extra_compile_args=["-O3", "-std=c11", "-D_GNU_SOURCE", "-Wall"],
)

setup(cffi_modules=["src/rmqstore/_native/build.py:ffibuilder"], ext_modules=[MESSAGES])
