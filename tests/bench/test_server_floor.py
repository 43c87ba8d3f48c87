"""benches/server_floor.py and server_floor.c, the no-broker floors of the server benchmark: a
real process on loopback answers every send SUCCESS, with its own opaque, after appending the
frame."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rmqstore.net import RemotingClient
from rmqstore.protocol import RemotingCommand, RequestCode
from rmqstore.protocol.frame import encode
from rmqstore.server.testing import free_port, wait_until

FLOOR = Path(__file__).resolve().parents[2] / "benches" / "server_floor.py"
C_FLOOR = FLOOR.with_suffix(".c")


def _command(floor: str, tmp_path: Path, port: int, flush: str) -> list[str]:
    if floor == "python":
        return [sys.executable, str(FLOOR), "--port", str(port), "--dir", str(tmp_path),
                "--flush", flush]
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    exe = tmp_path / "server_floor"
    subprocess.run(["gcc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Werror", "-o",
                    str(exe), str(C_FLOOR)], check=True, timeout=120)
    return [str(exe), str(port), str(tmp_path / "floor.log"), flush]


@pytest.mark.parametrize("floor", ["python", "c"])
@pytest.mark.parametrize("flush", ["sync", "async"])
def test_floor_answers_every_send_and_appends_its_frame(tmp_path: Path, flush: str,
                                                        floor: str) -> None:
    port = free_port()
    out = tmp_path / "out"
    command = _command(floor, tmp_path, port, flush)
    with out.open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: b"listening" in out.read_bytes() or proc.poll() is not None, 30,
                   what="the floor server")
        assert proc.poll() is None, out.read_text()

        async def sends() -> tuple[list[RemotingCommand], int]:
            client = RemotingClient()
            try:
                requests = [RemotingCommand(code=RequestCode.SEND_MESSAGE_V2,
                                            ext_fields={"b": "T", "e": str(i)}, body=b"x" * i)
                            for i in range(1, 40)]
                answers = await asyncio.gather(*(client.invoke(f"127.0.0.1:{port}", r, 10.0)
                                                 for r in requests))
                return list(answers), sum(len(encode(r)) for r in requests)
            finally:
                await client.close()

        answers, frame_bytes = asyncio.run(sends())
        assert [a.code for a in answers] == [0] * 39
        assert (tmp_path / "floor.log").stat().st_size == frame_bytes
    finally:
        proc.terminate()
        proc.wait(10)
