"""The floors of the package and the rules between them, read from the code's own imports:

    protocol   the wire formats: the standard library only, nothing of rmqstore but itself,
               and one native codec of its own (protocol._codec, built from _native/codec.c:
               the remoting frame's encode and decode, no engine code, importing nothing of
               rmqstore); never the engine or the cffi module
    net        asyncio networking: protocol and the standard library
    client     the asyncio client: protocol and net, never the engine or the server
    engine     the store (everything else but ha, server, bench and cli): never net, ha, server,
               client
    ha         replication between stores: the engine, protocol and net's TLS listener,
               never net's connections, server, client
    server     NameServer and Broker: anything below

plus no import cycle anywhere in src/, and, in fresh interpreters, what an import really loads.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import rmqstore

SRC = Path(rmqstore.__file__).parent
# Third-party modules a floor may load, and why: lz4 only inside decode_body, for RocketMQ 5's
# LZ4 bodies; uvloop is net's optional event loop.
PROTOCOL_EXTRA = {"lz4"}
NET_EXTRA = {"uvloop"}
FACES = {"server", "client", "bench", "chaos", "cli", "__main__"}  # built on the engine


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, at any depth of the code."""
    me = module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.add(module)
            # `from pkg import sub` imports the submodule when there is one
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                if _is_module(candidate):
                    out.add(candidate)
    return out


def _is_module(name: str) -> bool:
    if not name.startswith("rmqstore."):
        return False
    rel = Path(*name.split(".")[1:])
    return (SRC / rel).with_suffix(".py").exists() or (SRC / rel / "__init__.py").exists()


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}
MODULES_AND_EXTENSIONS = set(MODULES) | {module_name(p).split(".abi3")[0].split(".cpython")[0]
                                         for p in SRC.rglob("*.so")}
GRAPH = {name: imports(path) for name, path in MODULES.items()}


def floor(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    return parts[1] if parts[1] in {"protocol", "net", "ha"} | FACES else "engine"


def floors_imported(module: str) -> set[str]:
    return {floor(m) for m in GRAPH[module] if m.startswith("rmqstore.") or m == "rmqstore"}


def third_party(module: str) -> set[str]:
    tops = {m.split(".")[0] for m in GRAPH[module] if m}
    return {t for t in tops if t != "rmqstore" and t not in sys.stdlib_module_names}


def of_floor(name: str) -> list[str]:
    found = [m for m in MODULES if floor(m) == name]
    assert found, f"no module on floor {name}"
    return found


def test_protocol_imports_only_itself_and_the_standard_library() -> None:
    for m in of_floor("protocol"):
        assert floors_imported(m) <= {"protocol"}, (m, GRAPH[m])
        assert third_party(m) <= PROTOCOL_EXTRA, (m, third_party(m))


CODEC_SOURCE = SRC / "_native" / "codec.c"


def test_protocols_native_codec_holds_no_engine_code_and_imports_nothing() -> None:
    """The codec's C source includes no header of the engine's and imports no module; the
    protocol floor loads no compiled module but it (the cffi module is the engine's)."""
    text = CODEC_SOURCE.read_text()
    includes = re.findall(r'#include\s*([<"][^>"]+[>"])', text)
    assert includes and all(i.startswith("<") for i in includes), includes
    assert "PyImport_" not in text
    compiled = {m for m in MODULES_AND_EXTENSIONS if floor(m) == "protocol"} - set(MODULES)
    assert compiled == {"rmqstore.protocol._codec"}
    for m in of_floor("protocol"):
        assert not any(i.startswith("rmqstore._native") for i in GRAPH[m]), (m, GRAPH[m])


def test_net_imports_only_protocol() -> None:
    for m in of_floor("net"):
        assert floors_imported(m) <= {"net", "protocol"}, (m, GRAPH[m])
        assert third_party(m) <= NET_EXTRA, (m, third_party(m))


def test_client_imports_only_protocol_and_net() -> None:
    for m in of_floor("client"):
        assert floors_imported(m) <= {"client", "protocol", "net"}, (m, GRAPH[m])


def test_engine_never_imports_net_ha_server_or_client() -> None:
    for m in of_floor("engine"):
        assert floors_imported(m) <= {"engine", "protocol", "package"}, (m, GRAPH[m])


HA_FROM_NET = {"rmqstore.net.listener", "rmqstore.net.tls"}  # the HA port's TLS, as remoting's


def test_ha_imports_only_the_engine_protocol_and_nets_tls() -> None:
    """Replication sits beside the engine, so an embedded store can use it without the
    broker; it carries its own wire format, not the remoting protocol's connections, and
    takes only net's TLS listener and settings."""
    for m in of_floor("ha"):
        from_net = {i for i in GRAPH[m] if floor(i) == "net"}
        assert from_net <= HA_FROM_NET, (m, from_net)
        assert floors_imported(m) <= {"ha", "engine", "protocol", "net", "package"}, (m, GRAPH[m])


def test_no_import_cycle_in_src() -> None:
    edges = {m: {i for i in deps if i in MODULES and i != m} for m, deps in GRAPH.items()}
    # A package's __init__ is loaded before any of its modules: a module importing its own
    # package's __init__ is the language's doing, not a cycle of ours.
    for m in edges:
        edges[m] = {i for i in edges[m] if not m.startswith(i + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_the_rules_see_a_planted_violation(tmp_path: Path) -> None:
    """The reader of imports finds a relative import of the engine from the client."""
    fake = SRC / "client" / "_layering_probe.py"
    fake.write_text("from ..store import MessageStore\n")
    try:
        assert "rmqstore.store" in imports(fake)
        assert floor("rmqstore.store") == "engine"
    finally:
        fake.unlink()


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC.parent)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, env=env)


def _loaded(prefixes: tuple[str, ...]) -> str:
    return f"sorted(m for m in sys.modules if m.startswith({prefixes!r}))"


def test_importing_protocol_loads_nothing_else_of_rmqstore() -> None:
    r = _fresh(f"""
        import sys
        import rmqstore.protocol.message, rmqstore.protocol.route, rmqstore.protocol.headers
        import rmqstore.protocol.fastjson, rmqstore.protocol.register_body
        print({_loaded(("rmqstore",))})
    """)
    assert r.returncode == 0, r.stderr
    loaded = eval(r.stdout)  # noqa: S307 - our own child's repr of a list of str
    # the package's __init__ runs first: its version and errors, nothing more
    assert set(loaded) - {"rmqstore", "rmqstore._version", "rmqstore.errors"} == \
        {m for m in loaded if m.startswith("rmqstore.protocol")}


def test_the_client_works_against_a_server_without_the_engine(tmp_path: Path) -> None:
    """A broker in its own process; in a fresh interpreter the client sends and pulls, and
    neither the compiled module, the store nor the server was ever loaded there."""
    from tests.client.conftest import Server

    server = Server(tmp_path, split=False)
    server.start()
    namesrv = server.namesrv
    try:
        r = _fresh(f"""
            import asyncio, sys
            from rmqstore.client import ConsumeFromWhere, LitePullConsumer, Message, Producer

            async def main():
                async with Producer("PG_layer", {namesrv!r}) as p:
                    await p.create_topic("LayerT", 1)
                    sent = await p.send(Message("LayerT", b"floors"))
                c = LitePullConsumer("CG_layer", {namesrv!r},
                                     consume_from_where=ConsumeFromWhere.FIRST_OFFSET)
                c.subscribe("LayerT")
                async with c:
                    for _ in range(50):
                        got = await c.poll(timeout_s=0.5)
                        if got:
                            return sent.status.name, got[0].body
                return sent.status.name, None

            print(asyncio.run(main()))
            print({_loaded(("rmqstore._native", "rmqstore.store", "rmqstore.server",
                            "rmqstore.record", "rmqstore.commitlog"))})
        """)
    finally:
        server.stop()
    assert r.returncode == 0, r.stderr
    result, loaded = r.stdout.strip().splitlines()[-2:]
    assert result == "('SEND_OK', b'floors')"
    assert loaded == "[]"
