"""Run a service as a faust-streaming worker: an agent over its topics, tables in Kafka.

Experimental (``materialabs serve NAME --engine faust``): after a SIGKILL it lost one
in-flight event in about one run of six on a loaded machine, its offset committed
without its output; the runtime's own loop is the default until that is found.

The record logic is the runtime's ``RecordProcessor`` (same DLQ, dedup and output ids as
the other adapters). Faust adds what a long-running distributed worker needs:

* an agent per service over its input topics, partitions shared across workers;
* two Faust tables: ``<service>-processed`` (event ids done, co-partitioned with the
  input) and ``<service>-state`` (``ctx.state``, each key's changelog partition chosen
  by hashing the key). Their changelog topics are compacted, so a restarted worker
  recovers both from Kafka before it handles anything. One worker sees all the state;
  when a service is scaled out to several workers, each sees the keys of the partitions
  it owns, so state keyed by the message key (a candidate's content key) stays correct.

Ordering per event: handler (in a thread, so a slow handler cannot starve the
consumer's heartbeats) -> send outputs and wait for the broker's acks -> mark the event
processed and write state (changelog) -> Faust commits the offset later.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import faust

from materialabs import config
from materialabs.bus.kafka import DEFAULT_PARTITIONS, KafkaBus
from materialabs.bus.port import BusError, Record, dlq_topic
from materialabs.bus.table import Change, MemoryTable
from materialabs.events.registry import SchemaRegistry, default_registry
from materialabs.runtime.core import (
    Outcome,
    RecordProcessor,
    RunStats,
    ServiceSpec,
    build_context,
    count,
)
from materialabs.runtime.state import JsonState

log = logging.getLogger(__name__)


class _FaustChangelog:
    """A Faust table as the changelog of the runtime's in-memory table.

    Faust keeps the table (and recovers it from its compacted changelog topic after a
    restart or a rebalance); the in-memory table reads its content after each rebalance and
    writes its changes back with the agent's event current, so Faust can route them.
    """

    def __init__(self, table: Any) -> None:
        self._table = table

    def read(self) -> tuple[bool, list[Change]]:
        return True, [(str(k), str(v).encode()) for k, v in self._table.items()]

    def write(self, changes: Sequence[Change]) -> None:
        for key, value in changes:
            if value is None:
                self._table.pop(key, None)
            else:
                self._table[key] = value.decode()

    def close(self) -> None:
        """Faust closes its tables itself."""


def _headers(raw: Any) -> tuple[tuple[str, bytes], ...]:
    if not raw:
        return ()
    items = raw.items() if isinstance(raw, Mapping) else raw
    return tuple((str(k), bytes(v or b"")) for k, v in items)


def _faust_home() -> Path:
    # The platform's home (config.home_path), not a folder relative to the working directory.
    home = config.home_path() / "faust"
    home.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    return home


def build_app(spec: ServiceSpec, bootstrap: str, *, registry: SchemaRegistry | None = None,
              ports: Mapping[str, Any] | None = None) -> tuple[faust.App, RunStats]:
    registry = registry or default_registry()
    # Tables are co-partitioned with the input, so they take the inputs' partition count.
    bus = KafkaBus(bootstrap, default_partitions=spec.partitions or DEFAULT_PARTITIONS)
    try:
        bus.create_topics([*spec.input_topics, *(dlq_topic(t) for t in spec.input_topics),
                           *spec.output_topics])
        counts = {topic: bus.partitions(topic) for topic in spec.input_topics}
    finally:
        bus.close()
    if len(set(counts.values())) != 1:
        raise BusError(f"{spec.name}: a Faust worker needs its input topics co-partitioned "
                       f"(same partition count), got {counts}")
    partitions = next(iter(counts.values()))
    app = faust.App(
        f"materialabs-{spec.name}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=partitions,
        web_enabled=False,
        processing_guarantee="at_least_once",
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        # Faust's local files (it makes "<app id>-data" in the working folder otherwise).
        datadir=str(_faust_home() / "{conf.name}"),
        broker_commit_every=100,
        broker_commit_interval=1.0,
        # A killed worker's partitions move on after 10 s, not Faust's default 60 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
    )
    # Table keys and values are text (Faust's JSON codec); state values are JSON text.
    processed = app.Table(f"{spec.name}-processed", partitions=partitions)
    # State keys route by their own hash (like message keys), not by the event being
    # handled: one key then always lands in one changelog partition, so recovery cannot
    # replay an older value of it from another partition after a newer one.
    state_table = MemoryTable(_FaustChangelog(app.Table(
        f"{spec.name}-state", partitions=partitions, use_partitioner=True)))
    state = JsonState(state_table)
    context = build_context(spec, state, registry, ports)
    processor = RecordProcessor(spec, context, registry)
    stats = RunStats()
    source = app.topic(*spec.input_topics, key_type=bytes, value_type=bytes)
    # Faust recovers the state table before the agent gets an event after a (re)assignment;
    # the in-memory table reads it again then.
    rebalanced = [True]

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # mode's receiver typing
    async def _on_rebalance(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        rebalanced[0] = True

    outputs: dict[str, Any] = {}

    def output_topic(name: str) -> Any:
        if name not in outputs:
            outputs[name] = app.topic(name, key_type=bytes, value_type=bytes)
        return outputs[name]

    def seen(marker: str) -> bool:
        return processed.get(marker) is not None

    @app.agent(source, name=f"{spec.name}-agent")
    async def handle(stream: Any) -> None:
        loop = asyncio.get_running_loop()
        async for event in stream.events():
            message = event.message
            record = Record(message.topic, message.partition, message.offset, message.key,
                            message.value or b"", _headers(message.headers),
                            int((message.timestamp or 0) * 1000))
            if rebalanced[0]:
                rebalanced[0] = False
                state_table.catch_up()
                state.refresh()
            outcome: Outcome = await loop.run_in_executor(None, processor.process, record, seen)
            acks = []
            for item in outcome.outgoing:
                acks.append(await output_topic(item.topic).send(
                    key=item.key, value=item.value, headers=list(item.headers), force=True))
            for ack in acks:
                await ack  # durable before the event counts as processed
            if outcome.marker:
                processed[outcome.marker] = 1
            state.write_back()
            state_table.flush()
            count(stats, outcome)

    return app, stats


def run_worker(spec: ServiceSpec, bootstrap: str, loglevel: str | None = None) -> None:
    """Run until SIGTERM/SIGINT (Faust's worker handles the signals).

    ``loglevel`` defaults to $MATERIALABS_FAUST_LOG, else "warn".
    """
    loglevel = loglevel or os.environ.get("MATERIALABS_FAUST_LOG", "warn")
    from faust.worker import Worker

    app, _stats = build_app(spec, bootstrap)
    Worker(app, loglevel=loglevel).execute_from_commandline()
