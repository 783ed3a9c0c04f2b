"""Creating the event-log topic: the source of truth, so it is kept forever (retention -1)."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)

TOPIC_CONFIG = {
    "retention.ms": "-1",  # never delete: views and projections are rebuilt from it
    "retention.bytes": "-1",
    "cleanup.policy": "delete",  # not compact: every update of a board matters, not the last per key
}


async def ensure_topic(bootstrap: str, topic: str, partitions: int, replication: int = 1) -> None:
    """Create `topic` if it does not exist (idempotent; concurrent callers are fine)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic in await admin.list_topics():
            return
        try:
            response = await admin.create_topics([NewTopic(topic, partitions, replication, topic_configs=TOPIC_CONFIG)])
        except TopicAlreadyExistsError:
            return
        for _name, code, message in getattr(response, "topic_errors", ()):
            if code not in (0, TopicAlreadyExistsError.errno):
                raise RuntimeError(f"cannot create Kafka topic {topic}: error {code} {message}")
        log.info("created Kafka topic %s with %d partitions", topic, partitions)
    finally:
        await admin.close()
