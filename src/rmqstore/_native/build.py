"""cffi builder (API mode, out of line) for rmqstore._native._rmq.

The cdef is rmq_native.h itself with its preprocessor lines dropped, so each declaration exists
once and the C compiler checks the same text.
"""

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
SOURCES = ["crc32.c", "append.c", "record.c", "read.c", "index.c", "prefault.c", "syncer.c",
           "mapping.c", "replica.c", "replica_dispatch.c", "ha_follow.c", "ha_feed.c",
           "shared.c", "shared_commit.c", "cold_read.c", "send_parse.c"]


def _cdef() -> str:
    lines = (HERE / "rmq_native.h").read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "rmqstore._native._rmq",
    '#include "rmq_native.h"',
    sources=[str((HERE / s).relative_to(Path.cwd())) if HERE.is_relative_to(Path.cwd())
             else str(HERE / s) for s in SOURCES],
    include_dirs=[str(HERE)],
    extra_compile_args=["-O3", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wno-unused-function"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
