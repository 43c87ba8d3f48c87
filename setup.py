# Only what pyproject.toml cannot say: the compiled modules, built at install. The cffi one holds
# the hot paths (API mode, out of line); _messages, _put and _send are plain C API because they
# make Python objects; protocol's _codec is the remoting wire codec's (no engine code in it).
from setuptools import Extension, setup


def c_api_module(name: str, *sources: str, package: str = "rmqstore._native") -> Extension:
    return Extension(
        f"{package}.{name}",
        sources=[f"src/rmqstore/_native/{source}" for source in sources],
        include_dirs=["src/rmqstore/_native"],
        define_macros=[("Py_LIMITED_API", "0x030B0000")],
        py_limited_api=True,
        extra_compile_args=["-O3", "-std=c11", "-D_GNU_SOURCE", "-Wall"],
    )


setup(cffi_modules=["src/rmqstore/_native/build.py:ffibuilder"],
      ext_modules=[c_api_module("_messages", "messages.c"), c_api_module("_put", "putter.c"),
                   c_api_module("_send", "send_path.c", "send_read.c", "send_counts.c",
                                  "send_front.c"),
                   c_api_module("_codec", "codec.c", package="rmqstore.protocol")])
