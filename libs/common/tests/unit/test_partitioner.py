"""The relay's partitioner sends every key where aiokafka's default partitioner would."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner

from collect_common.bus.relay import KeyHashPartitioner, idempotent_producer


def test_every_key_goes_to_the_default_partition_also_when_remembered_or_forgotten() -> None:
    default = DefaultPartitioner()
    ours = KeyHashPartitioner(size=50)  # small: the memory is cleared several times below
    keys = [uuid.uuid4().hex.encode() for _ in range(200)] + [b"", b"a", "债务人-1".encode()]
    for partitions in ([0], [0, 1, 2], list(range(12)), [3, 5, 9]):
        for _ in range(2):  # the second round hits the remembered hashes
            for key in keys:
                assert ours(key, partitions, partitions) == default(key, partitions, partitions)


def test_a_record_without_key_goes_to_an_available_partition() -> None:
    ours = KeyHashPartitioner()
    assert {ours(None, [0, 1, 2], [2]) for _ in range(20)} == {2}


async def test_the_platform_producer_uses_it() -> None:
    producer = idempotent_producer("127.0.0.1:9")
    assert isinstance(producer._partitioner, KeyHashPartitioner)
