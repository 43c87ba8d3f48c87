"""The native module: known answers, its import contract, and that only it touches cffi (the
floors of the package are checked in tests/test_layering.py)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zlib
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from rmqstore import _native

SRC = Path(__file__).resolve().parents[2] / "src" / "rmqstore"


def java_hash_reference(text: str) -> int:
    """Java String.hashCode over UTF-16 code units, 32-bit wrapping."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


@given(st.binary(max_size=3000))
def test_crc32_matches_zlib_masked(data):
    assert _native.crc32(data) == zlib.crc32(data) & 0x7FFFFFFF


def test_crc32_every_length_and_alignment():
    """Up to 1100 bytes: the table path, the 16-byte folding and, from 256 bytes on (where the
    CPU has VPCLMULQDQ), the 256-byte folding, one block and several, with every tail."""
    blob = os.urandom(1200)
    for start in range(8):
        for n in range(0, 1100):
            chunk = memoryview(blob)[start:start + n]
            assert _native.crc32(chunk) == zlib.crc32(chunk) & 0x7FFFFFFF, (start, n)


@given(st.text(max_size=60))
def test_java_hash_matches_utf16_reference(text):
    assert _native.java_hash(text) == java_hash_reference(text)


def test_java_hash_known_answers():
    # Values Java prints for "hello".hashCode(), "TagA".hashCode(), "".hashCode()
    assert _native.java_hash("hello") == 99162322
    assert _native.java_hash("TagA") == 2598919
    assert _native.java_hash("") == 0
    assert _native.java_hash("a😀") == 1866116  # a surrogate pair counts as two units


def test_missing_compiled_module_is_a_clear_import_error(tmp_path):
    """With the compiled module hidden, the first use of the store says what is wrong and how
    to fix it (`import rmqstore` alone loads the engine lazily, so the client needs no build)."""
    code = (
        "import sys, importlib.abc\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'rmqstore._native._rmq':\n"
        "            raise ImportError('hidden for the test')\n"
        "sys.meta_path.insert(0, Hide())\n"
        "import rmqstore\n"
        "try:\n    rmqstore.open\n"
        "except ImportError as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "NativeModuleError" in out.stdout
    assert "pip install" in out.stdout


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
    return names


def test_only_the_bridge_touches_cffi():
    for path in SRC.rglob("*.py"):
        if path.parent.name == "_native":
            continue
        for name in _imports(path):
            assert not name.startswith("cffi") and not name.endswith("_rmq"), (path, name)


def test_public_results_hold_no_cdata(tmp_path):
    import rmqstore

    with rmqstore.open(tmp_path, commitlog_segment_bytes=1 << 16, background=False) as s:
        r = s.put("T", b"x", tags="a", keys=["k"])
        b = s.put_batch("T", [b"y", b"z"])
        g = s.get("T", 0, 0)
        values = [r.status, r.queue_id, r.queue_offset, r.commitlog_offset, r.store_timestamp,
                  r.msg_id, b.commitlog_offsets, b.first_queue_offset, g.next_offset,
                  g.min_offset, g.max_offset]
        m = g.messages[0]
        values += [m.body, m.topic, m.queue_id, m.queue_offset, m.commitlog_offset, m.tags,
                   m.keys, m.properties, m.store_timestamp, m.born_timestamp, m.msg_id,
                   m.store_host, m.born_host, m.size, m.sysflag]
        for v in values:
            assert "cffi" not in type(v).__module__, (v, type(v))
            if isinstance(v, list):
                assert all("cffi" not in type(x).__module__ for x in v)
