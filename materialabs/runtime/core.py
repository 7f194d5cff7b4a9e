"""The generic service runtime: a handler plus a bus make a service.

What a service author writes (no Kafka, Faust or HTTP imports)::

    def handle(event: Event, ctx: Context) -> Iterable[Event]:
        yield ctx.event("CandidatePredicted", {...}, cause=event)

    SERVICE = ServiceSpec(name="predictor", consumes=["candidates.generated"], handler=handle)

What the runtime does with every record, in this order (at-least-once delivery with
exactly-once effects for idempotent handlers):

1. decode (Avro single-object); failure -> ``<topic>.dlq`` with ``dlq.reason``,
   ``dlq.topic``, ``dlq.partition``, ``dlq.offset`` headers; the partition keeps flowing;
2. skip an ``event_id`` already processed (the processed-ids set is a durable table);
3. call the handler (retried a few times, then dead-lettered with the error);
4. give each output a deterministic ``event_id`` (service, input id, index), encode, send;
5. after the whole batch: flush outputs, then record processed ids and state, then
   commit offsets. A crash between any two steps redelivers the batch; redone work emits
   the same event ids, which downstream consumers drop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from materialabs.bus.port import Bus, Record, dlq_topic, next_offsets
from materialabs.events.codec import DecodeError, EncodeError, decode, encode
from materialabs.events.envelope import Event, derived_event_id, new_event, utc_now_millis
from materialabs.events.registry import SchemaRegistry, default_registry
from materialabs.runtime.state import JsonState

log = logging.getLogger(__name__)

TYPE_HEADER = "materialabs.type"


class InvalidEvent(ValueError):
    """Raised by a handler for an event that decodes but makes no sense; it is dead-lettered."""


@dataclass
class Context:
    """What a handler may use besides the event: ports, clock and durable state."""

    service: str
    state: MutableMapping[str, Any]
    clock: Callable[[], datetime] = utc_now_millis
    store: Any = None
    ledger: Any = None
    ports: dict[str, Any] = field(default_factory=dict)
    registry: SchemaRegistry | None = None

    def event(self, type: str, fields: Mapping[str, Any], cause: Event | None = None,
              key: str | None = None, campaign_id: str | None = None) -> Event:
        """A new event produced by this service, caused by ``cause``."""
        return new_event(type, fields, producer=self.service, causation=cause,
                         campaign_id=campaign_id, key=key, occurred_at=self.clock(),
                         registry=self.registry)


Handler = Callable[[Event, Context], Iterable[Event] | None]


@dataclass
class ServiceSpec:
    """One service: its name (also its consumer group), input topics and handler.

    ``produces`` lists output topics to create at start (Kafka would otherwise auto-create
    them with the broker's default partition count); ``ports`` builds the handler's ports
    once at start (``store``, ``ledger`` and any others by name); ``partitions`` is used
    when the runtime creates missing topics.
    """

    name: str
    consumes: Sequence[str]
    handler: Handler
    produces: Sequence[str] = ()
    ports: Callable[[], Mapping[str, Any]] | None = None
    partitions: int | None = None
    # Micro-batching: called with every decodable event of a polled batch before they are
    # handled one by one, so a service can do the batch's heavy work in one call (the
    # predictor scores all candidates in one ensemble pass). Failures here are only logged:
    # the per-event handler still runs and decides.
    before_batch: Callable[[Sequence[Event], Context], None] | None = None
    # Send each output as soon as the handler yields it instead of after the handler
    # returns, so consumers start on a long handler's first outputs (the generator
    # streams a round's candidates while it is still substituting). Output ids do not
    # depend on it. The price: outputs yielded before a handler failure are already out
    # (a retry sends them again under the same ids, which consumers drop).
    stream_outputs: bool = False


@dataclass
class RunStats:
    processed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    emitted: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Outgoing:
    """A record to produce: an output event or a dead letter."""

    topic: str
    value: bytes
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]


@dataclass
class Outcome:
    """What handling one record amounts to, before anything is sent."""

    kind: str  # "processed" | "duplicate" | "dead_lettered"
    outgoing: list[Outgoing] = field(default_factory=list)
    marker: str | None = None  # add to the processed-ids set once outgoing is durable
    streamed: int = 0  # outputs already handed to ``send`` (ServiceSpec.stream_outputs)


def dlq_marker(record: Record) -> str:
    return f"dlq:{record.topic}:{record.partition}:{record.offset}"


def build_context(spec: ServiceSpec, state: MutableMapping[str, Any], registry: SchemaRegistry,
                  ports: Mapping[str, Any] | None = None) -> Context:
    all_ports = dict(spec.ports() if spec.ports else {})
    all_ports.update(ports or {})
    return Context(service=spec.name, state=state, store=all_ports.pop("store", None),
                   ledger=all_ports.pop("ledger", None), ports=all_ports, registry=registry)


class RecordProcessor:
    """Decode, deduplicate, handle and encode one record; no transport in here.

    Shared by the bus runner (embedded and Kafka) and the Faust worker, so both
    dead-letter, deduplicate and name outputs identically.
    """

    def __init__(self, spec: ServiceSpec, context: Context, registry: SchemaRegistry,
                 handler_attempts: int = 3) -> None:
        self.spec = spec
        self.context = context
        self.registry = registry
        self.handler_attempts = handler_attempts

    def process(self, record: Record, seen: Callable[[str], bool],
                send: Callable[[Outgoing], None] | None = None) -> Outcome:
        """``seen(marker)`` says whether an event id (or DLQ marker) was already handled.

        With ``send`` and a spec that streams its outputs, each output goes to ``send``
        as soon as the handler yields it, rather than into the outcome.
        """
        marker = dlq_marker(record)
        if seen(marker):
            return Outcome("duplicate")
        try:
            event = decode(record.value, self.registry,
                           key=record.key.decode("utf-8", "replace") if record.key else None,
                           topic=record.topic)
        except DecodeError as error:
            return self.dead_letter(record, str(error))
        if seen(event.event_id):
            return Outcome("duplicate")
        stream = send if self.spec.stream_outputs else None
        outputs, streamed, failure = self._call_handler(event, stream)
        if failure is not None:
            return self.dead_letter(record, failure)
        return Outcome("processed", [self._outgoing(o, body) for o, body in outputs],
                       event.event_id, streamed)

    def _call_handler(self, event: Event, send: Callable[[Outgoing], None] | None
                      ) -> tuple[list[tuple[Event, bytes]], int, str | None]:
        """(outputs not streamed, how many were streamed, failure reason or None)."""
        error: Exception | None = None
        streamed = 0
        # Each attempt is a unit of work on the state: committed if it succeeds, forgotten
        # if it raises, so a retry starts from the committed state and a dead-lettered
        # record leaves none of its changes behind.
        unit = self.context.state if isinstance(self.context.state, JsonState) else None
        for _attempt in range(self.handler_attempts):
            try:
                if send is None:
                    results = list(self.spec.handler(event, self.context) or ())
                    prepared = self._prepare_outputs(event, results)
                    if unit is not None:
                        unit.commit()
                    return prepared, 0, None
                # A retry yields from index 0 again: the same ids, dropped downstream.
                for index, output in enumerate(self.spec.handler(event, self.context) or ()):
                    send(self._outgoing(*self._prepare_output(event, index, output)))
                    streamed = max(streamed, index + 1)
                if unit is not None:
                    unit.commit()
                return [], streamed, None
            except (InvalidEvent, EncodeError) as invalid:
                if unit is not None:
                    unit.rollback()
                kind = "invalid" if isinstance(invalid, InvalidEvent) else "output_invalid"
                return [], streamed, f"{kind}: {invalid}"
            except Exception as exc:  # a handler bug must not block the partition
                if unit is not None:
                    unit.rollback()
                error = exc
                log.warning("%s: handler failed on %s %s: %r", self.spec.name, event.type,
                            event.event_id, exc)
        return [], streamed, f"handler_error: {type(error).__name__}: {error}"

    def _prepare_outputs(self, cause: Event, results: list[Event]) -> list[tuple[Event, bytes]]:
        return [self._prepare_output(cause, index, output) for index, output in enumerate(results)]

    def _prepare_output(self, cause: Event, index: int, output: Any) -> tuple[Event, bytes]:
        if not isinstance(output, Event):
            raise EncodeError(f"handler returned {type(output).__name__}, expected Event")
        output = output.with_event_id(derived_event_id(self.spec.name, cause.event_id, index))
        return output, encode(output, self.registry)

    def _outgoing(self, event: Event, body: bytes) -> Outgoing:
        topic = event.topic or self.registry.schema(event.type).topic
        if topic is None:
            raise EncodeError(f"{event.type}: no topic in the event or its schema")
        return Outgoing(topic, body, event.key.encode() if event.key else None,
                        ((TYPE_HEADER, event.type.encode()),))

    def dead_letter(self, record: Record, reason: str) -> Outcome:
        log.warning("%s: dead-lettering %s[%d]@%d: %s", self.spec.name, record.topic,
                    record.partition, record.offset, reason)
        headers = (
            ("dlq.reason", reason.encode()),
            ("dlq.topic", record.topic.encode()),
            ("dlq.partition", str(record.partition).encode()),
            ("dlq.offset", str(record.offset).encode()),
            ("dlq.service", self.spec.name.encode()),
        )
        return Outcome("dead_lettered", [Outgoing(dlq_topic(record.topic), record.value,
                                                  record.key, headers)], dlq_marker(record))


class ServiceRunner:
    """Drives one service over any bus port adapter (embedded or Kafka)."""

    # Streamed outputs go to the producer in chunks: kafka-python (the Kafka client before
    # librdkafka) woke its sender thread for each new batch, and in a busy process every
    # wake-up waited for the GIL: one send per output cost a streaming generator seconds
    # per round. Chunks cost nothing with librdkafka and keep the embedded bus's writes few.
    STREAM_CHUNK = 50
    STREAM_LINGER_S = 0.1

    def __init__(self, spec: ServiceSpec, bus: Bus, *, registry: SchemaRegistry | None = None,
                 group: str | None = None, handler_attempts: int = 3,
                 ports: Mapping[str, Any] | None = None) -> None:
        self.spec = spec
        self.bus = bus
        self.registry = registry or default_registry()
        self.stats = RunStats()
        bus.create_topics([*spec.consumes, *(dlq_topic(t) for t in spec.consumes),
                           *spec.produces], spec.partitions)
        # Processed ids and state belong with the group's offsets: a new group (a test's
        # own group, a replay) starts with fresh ones.
        self.group = group or spec.name
        self.processed_ids = bus.table(f"{self.group}.processed")
        self.state_table = bus.table(f"{self.group}.state")
        self.context = build_context(spec, JsonState(self.state_table), self.registry, ports)
        self.processor = RecordProcessor(spec, self.context, self.registry, handler_attempts)
        self.producer = bus.producer()
        self.consumer = bus.consumer(self.group, list(spec.consumes))
        self._streamed: list[Outgoing] = []
        self._stream_since = 0.0

    # -- the loop -------------------------------------------------------------------
    def step(self, timeout_s: float = 0.2, max_records: int = 500) -> int:
        """Poll one batch, handle it, make it durable, commit. Returns records seen."""
        if self.consumer.take_rebalanced():
            self.processed_ids.catch_up()
            self.state_table.catch_up()
        records = self.consumer.poll(timeout_s, max_records)
        if not records:
            return 0
        if self.spec.before_batch is not None:
            self._before_batch(records)
        for record in records:
            outcome = self.processor.process(record, self.processed_ids.__contains__,
                                             self._stream)
            self._drain_stream()
            for item in outcome.outgoing:
                self._send(item)
            if outcome.marker:
                # In memory at once (a duplicate later in the batch is skipped); durable
                # only at the flush below, after the outputs are.
                self.processed_ids.put(outcome.marker, b"")
            self._count(outcome)
        self.producer.flush()
        # State before processed ids: a crash between the two redelivers the batch to
        # handlers whose state already holds it (they are idempotent), never the reverse
        # (events marked done whose effect on the state was lost).
        self.context.state.write_back()  # type: ignore[attr-defined]
        self.state_table.flush()
        self.processed_ids.flush()
        self.consumer.commit(next_offsets(records))
        self.stats.batches += 1
        return len(records)

    def _send(self, item: Outgoing) -> None:
        self.producer.send(item.topic, item.value, key=item.key, headers=item.headers)

    def _stream(self, item: Outgoing) -> None:
        if not self._streamed:
            self._stream_since = time.monotonic()
        self._streamed.append(item)
        if (len(self._streamed) >= self.STREAM_CHUNK
                or time.monotonic() - self._stream_since >= self.STREAM_LINGER_S):
            self._drain_stream()

    def _drain_stream(self) -> None:
        for item in self._streamed:
            self._send(item)
        self._streamed.clear()

    def _before_batch(self, records: Sequence[Record]) -> None:
        events = []
        for record in records:
            try:
                events.append(decode(record.value, self.registry, topic=record.topic))
            except DecodeError:
                continue  # the per-record path dead-letters it
        try:
            self.spec.before_batch(events, self.context)  # type: ignore[misc]
        except Exception as error:  # noqa: BLE001 - an optimisation must not lose records
            log.warning("%s: batch preparation failed (%r); handling one by one",
                        self.spec.name, error)

    def _count(self, outcome: Outcome) -> None:
        if outcome.kind == "processed":
            self.stats.processed += 1
            self.stats.emitted += len(outcome.outgoing) + outcome.streamed
        elif outcome.kind == "duplicate":
            self.stats.duplicates += 1
        else:
            self.stats.dead_lettered += 1

    def run(self, stop: threading.Event | None = None, idle_exit_s: float | None = None,
            poll_timeout_s: float = 0.2, max_records: int = 500) -> RunStats:
        """Loop until ``stop`` is set, or (with ``idle_exit_s``) after that long without records."""
        last_activity = time.monotonic()
        while not (stop and stop.is_set()):
            if self.step(poll_timeout_s, max_records) or not self.consumer.ready():
                # Waiting for a rebalance (e.g. for a killed member's session to expire)
                # is not idleness.
                last_activity = time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - last_activity >= idle_exit_s:
                break
        return self.stats

    def close(self) -> None:
        self.consumer.close()
        self.producer.flush()


def run_services(runners: Sequence[ServiceRunner], stop: threading.Event | None = None,
                 idle_exit_s: float | None = 1.0, max_records: int = 500) -> None:
    """Round-robin several services in one thread (the embedded mode's one process)."""
    last_activity = time.monotonic()
    while not (stop and stop.is_set()):
        seen = sum(r.step(0.0, max_records) for r in runners)
        if seen:
            last_activity = time.monotonic()
            continue
        if idle_exit_s is not None and time.monotonic() - last_activity >= idle_exit_s:
            return
        time.sleep(0.01)
