"""A consumer as its own process, for crash tests: ``python consumer_process.py ...``.

With ``--kill-after-batches N`` it SIGKILLs itself right after the N-th batch's
database commit, before that batch's offsets are committed to Kafka: the worst
moment for an at-least-once consumer. Prints the runner's stats as JSON on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from collections.abc import Sequence

from collect_common.bus.consumer import ConsumerRunner, Delivery
from collect_common.testing.probe import ProbeDatabase, probe_event_class, recording_handler


async def main(args: argparse.Namespace) -> None:
    probe = probe_event_class(args.topic, args.name)
    db = ProbeDatabase(args.db)
    batches = 0

    def after_db_commit(_deliveries: Sequence[Delivery]) -> None:
        nonlocal batches
        batches += 1
        if args.kill_after_batches and batches >= args.kill_after_batches:
            os.kill(os.getpid(), signal.SIGKILL)

    runner = ConsumerRunner(
        name=args.group,
        topics=[args.topic],
        bootstrap=args.bootstrap,
        uow_factory=db.uow,
        processed=db.processed,
        handlers={probe.type_name: recording_handler(db.effects)},
        clock=db.clock,
        max_batch=args.batch,
        after_db_commit=after_db_commit,
    )
    await runner.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    try:
        while loop.time() < deadline:
            await runner.poll_once()
            if await db.count() >= args.expect:
                break
    finally:
        await runner.close()
        await db.dispose()
    print(
        json.dumps(
            {
                "applied": runner.stats.applied,
                "duplicates": runner.stats.duplicates,
                "batches": runner.stats.batches,
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for opt in ("--bootstrap", "--db", "--topic", "--name", "--group"):
        parser.add_argument(opt, required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--kill-after-batches", type=int, default=0)
    asyncio.run(main(parser.parse_args()))
