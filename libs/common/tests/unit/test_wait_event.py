"""The background loops' pause: it ends when its event is set, else after its seconds."""

from __future__ import annotations

import asyncio

from collect_common.clock import wait_event


async def test_a_set_event_ends_the_wait_and_says_so() -> None:
    event = asyncio.Event()
    asyncio.get_running_loop().call_soon(event.set)
    assert await wait_event(event, 3600) is True


async def test_the_wait_runs_out_when_the_event_stays_clear() -> None:
    assert await wait_event(asyncio.Event(), 0) is False
