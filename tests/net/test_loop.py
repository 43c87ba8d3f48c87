"""The event loop net runs on: uvloop when installed, asyncio's own otherwise."""

from __future__ import annotations

from rmqstore.net.loop import loop_factory, run
from rmqstore.protocol import RemotingCommand, ResponseCode


def test_run_uses_a_working_loop() -> None:
    async def main() -> int:
        return int(RemotingCommand.response(ResponseCode.SYSTEM_BUSY).code)

    assert callable(loop_factory())
    assert run(main()) == 2
