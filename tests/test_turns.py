"""ThreadTurns: one run per thread at a time, in arrival order, with no slipping in."""

import asyncio

import pytest

from src.services.runs.turns import ThreadTurns


async def test_turn_passes_to_waiters_in_order_and_no_newcomer_slips_in():
    turns, order = ThreadTurns(), []
    assert turns.take_now("t")

    async def run(name: str) -> None:
        await turns.take("t")
        order.append(name)
        await asyncio.sleep(0)
        turns.give_back("t")

    waiters = [asyncio.create_task(run(name)) for name in ("a", "b", "c")]
    await asyncio.sleep(0)
    turns.give_back("t")
    # Handed to "a" but "a" has not run yet: the thread is still held.
    assert turns.held("t") and not turns.take_now("t")
    await asyncio.gather(*waiters)
    assert order == ["a", "b", "c"]
    assert not turns.held("t") and turns.take_now("t")


async def test_a_cancelled_waiter_leaves_the_queue_and_passes_on_a_turn_it_was_handed():
    turns = ThreadTurns()
    assert turns.take_now("t")
    first = asyncio.create_task(turns.take("t"))
    second = asyncio.create_task(turns.take("t"))
    await asyncio.sleep(0)
    first.cancel()  # still waiting: just leaves the queue
    with pytest.raises(asyncio.CancelledError):
        await first
    turns.give_back("t")  # handed to `second`...
    second.cancel()  # ...which is cancelled before it runs: the turn is passed on
    with pytest.raises(asyncio.CancelledError):
        await second
    assert not turns.held("t")
    assert turns.take_now("other") and turns.take_now("t")
