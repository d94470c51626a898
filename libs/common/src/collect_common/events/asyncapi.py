"""Generate the AsyncAPI 3.0 document of the platform's events from the catalogue.

``python -m collect_common.events.asyncapi [-o docs/asyncapi.json]``
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from typing import Any

from collect_common.events.catalogue import catalogue
from collect_common.events.envelope import EventEnvelope

PRODUCERS = {
    "case.events": "case-svc",
    "contact.events": "contact-svc",
    "complaint.events": "complaint-svc",
    "qa.events": "qa-svc",
}


def _message_id(type_name: str) -> str:
    return type_name.replace(".", "_")


def build_document() -> dict[str, Any]:
    envelope_schema = EventEnvelope.model_json_schema()
    envelope_schema["properties"].pop("data", None)
    by_topic: dict[str, list[str]] = defaultdict(list)
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"EventEnvelope": envelope_schema}
    for type_name, cls in catalogue().items():
        by_topic[cls.topic].append(type_name)
        mid = _message_id(type_name)
        data_schema = cls.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in data_schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[mid] = data_schema
        messages[mid] = {
            "name": type_name,
            "title": type_name,
            "summary": (cls.__doc__ or type_name).strip().splitlines()[0],
            "contentType": "application/json",
            "correlationId": {"location": "$message.payload#/correlationid"},
            "bindings": {"kafka": {"key": {"type": "string", "description": cls.key_field}}},
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/EventEnvelope"},
                    {
                        "type": "object",
                        "required": ["data"],
                        "properties": {
                            "type": {"const": type_name},
                            "data": {"$ref": f"#/components/schemas/{mid}"},
                        },
                    },
                ]
            },
        }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic, types in sorted(by_topic.items()):
        cid = topic.replace(".", "_")
        channels[cid] = {
            "address": topic,
            "description": f"Published by {PRODUCERS.get(topic, 'unknown')}; keyed by aggregate.",
            "messages": {
                _message_id(t): {"$ref": f"#/components/messages/{_message_id(t)}"} for t in types
            },
        }
        operations[f"publish_{cid}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": f"{PRODUCERS.get(topic, 'unknown')} publishes through its outbox",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Collections-operations platform events",
            "version": "1.0.0",
            "description": "Every event is a CloudEvents 1.0 envelope in JSON; data per type.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", "--output")
    args = parser.parse_args()
    text = json.dumps(build_document(), indent=2, ensure_ascii=False, default=str) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
