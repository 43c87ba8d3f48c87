"""Import rules: the remoting layer stands alone (the engine side is in
tests/engine/test_native.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import rmqstore
from rmqstore.server.remoting import RemotingCommand, ResponseCode
from rmqstore.server.remoting.loop import loop_factory, run

PKG = Path(rmqstore.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.add(base)
    return names


def test_remoting_imports_only_itself_and_stdlib() -> None:
    for path in (PKG / "server" / "remoting").glob("*.py"):
        for name in imported_modules(path):
            if name.startswith("."):
                assert not name.startswith(".."), f"{path} reaches out with {name}"
            else:
                assert not name.startswith("rmqstore"), f"{path} imports {name}"


def test_run_uses_a_working_loop() -> None:
    async def main() -> int:
        return int(RemotingCommand.response(ResponseCode.SYSTEM_BUSY).code)

    assert callable(loop_factory())
    assert run(main()) == 2
