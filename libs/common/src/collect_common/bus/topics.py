"""The platform's Kafka topics, read from ``topics.toml``, and their creation.

``python -m collect_common.bus.topics --bootstrap HOST:PORT`` creates every topic
(and its dead-letter topic) that does not exist yet; existing ones are left alone.
"""

from __future__ import annotations

import argparse
import asyncio
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int = 1


def dead_letter_topic(topic: str) -> str:
    return topic + str(_config()["defaults"]["dead_letter_suffix"])


def _config() -> dict[str, Any]:
    text = resources.files("collect_common.bus").joinpath("topics.toml").read_text()
    return tomllib.loads(text)


def platform_topics() -> list[TopicSpec]:
    """Every topic the platform needs, dead-letter topics included."""
    cfg = _config()
    rf = int(cfg["defaults"]["replication_factor"])
    specs: list[TopicSpec] = []
    for name, topic in cfg["topics"].items():
        specs.append(TopicSpec(name, int(topic["partitions"]), rf))
        specs.append(TopicSpec(dead_letter_topic(name), 1, rf))
    return specs


async def create_topics(bootstrap: str, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create the topics that are missing; return the names created."""
    specs = specs if specs is not None else platform_topics()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created: list[str] = []
        if missing:
            response = await admin.create_topics(
                [NewTopic(s.name, s.partitions, s.replication_factor) for s in missing]
            )
            # The broker reports per-topic errors in the response; aiokafka does not raise.
            failures: list[str] = []
            for name, error_code, *rest in response.topic_errors:
                if error_code == 0:
                    created.append(name)
                elif error_code != TopicAlreadyExistsError.errno:
                    # (TOPIC_ALREADY_EXISTS: another process won the race; the topic is there.)
                    error = for_code(error_code)
                    detail = rest[0] if rest and rest[0] else error.description
                    failures.append(f"{name}: {error.message} ({detail})")
            if failures:
                raise KafkaError("could not create topics: " + "; ".join(failures))
        return created
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    args = parser.parse_args()
    created = asyncio.run(create_topics(args.bootstrap))
    for name in created:
        print(f"created topic {name}")
    print(f"{len(platform_topics())} topics present")


if __name__ == "__main__":
    main()
