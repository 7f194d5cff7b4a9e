"""The generic service runtime: typed handlers plus a bus make a service.

What a service author writes (no Kafka, Faust or HTTP imports)::

    @dataclass(frozen=True)
    class PredictorPorts:                     # exactly the ports the handlers use
        models: ModelRegistry

    def on_generated(event: CandidateGenerated,
                     ctx: Context[PredictorPorts]) -> Iterator[CandidatePredicted]:
        yield CandidatePredicted(candidate_id=event.candidate_id, ...)

    HANDLERS = {CandidateGenerated: on_generated}
    SERVICE = ServiceSpec(name="predictor", handlers=HANDLERS, emits=(CandidatePredicted,),
                          ports=build_ports, ports_type=PredictorPorts)

The service consumes the topics of the event types it handles and creates those of the
types it emits (each schema names its topic). An event a handler returns without an
envelope gets this service's, caused by the input (``ctx.event`` sets one by hand).

What the runtime does with every record, in this order (at-least-once delivery with
exactly-once effects for idempotent handlers):

1. decode (Avro single-object, then the typed dataclass); failure -> ``<topic>.dlq`` with
   ``dlq.reason``, ``dlq.topic``, ``dlq.partition``, ``dlq.offset`` headers; the
   partition keeps flowing;
2. skip an ``event_id`` already processed (the processed-ids set is a durable table);
3. call the handler of the event's type as a unit of work on ``ctx.state`` (retried a
   few times, each attempt from the committed state, then dead-lettered with the error
   and none of its changes); an event of a type the service does not handle is skipped
   if its topic is its schema's (a shared topic), dead-lettered otherwise;
4. give each output a deterministic ``event_id`` (service, input id, index), encode, send;
5. after the whole batch: flush outputs, then record processed ids and state, then
   commit offsets. A crash between any two steps redelivers the batch; redone work emits
   the same event ids, which downstream consumers drop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, is_dataclass, replace
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Generic, TypeVar

from materialabs.bus.port import Bus, Record, dlq_topic, next_offsets
from materialabs.events.codec import DecodeError, EncodeError, decode, encode
from materialabs.events.envelope import Event, derived_event_id, utc_now_millis
from materialabs.events.registry import SchemaRegistry, default_registry
from materialabs.events.typed import EventRecord, new_envelope
from materialabs.runtime.state import JsonState

log = logging.getLogger(__name__)

TYPE_HEADER = "materialabs.type"

P = TypeVar("P")
E = TypeVar("E", bound=EventRecord)


class InvalidEvent(ValueError):
    """Raised by a handler for an event that decodes but makes no sense; it is dead-lettered."""


@dataclass
class Context(Generic[P]):
    """What a handler may use besides the event: its ports, the clock and durable state.

    ``batch`` is scratch space shared by ``before_batch`` and the handlers of one polled
    batch, emptied before each batch (the predictor leaves its batch's scores there).
    """

    service: str
    state: MutableMapping[str, Any]
    ports: P = None  # type: ignore[assignment]
    clock: Callable[[], datetime] = utc_now_millis
    registry: SchemaRegistry | None = None
    batch: dict[str, Any] = field(default_factory=dict)

    def event(self, draft: E, cause: EventRecord | None = None, *,
              campaign_id: str | None = None, key: str | None = None,
              topic: str | None = None) -> E:
        """``draft`` with this service's envelope, caused by ``cause`` (whose campaign it
        inherits unless ``campaign_id`` is given); ``key``/``topic`` override the schema's."""
        envelope = new_envelope(self.service, cause, campaign_id, occurred_at=self.clock())
        return replace(draft, envelope=envelope, key=draft.key if key is None else key,
                       topic=draft.topic if topic is None else topic)


# A handler takes one event type and its service's Context; it yields (or returns) events.
Handler = Callable[..., Iterable[EventRecord] | None]
Handlers = Mapping[type[EventRecord], Handler]


@dataclass(frozen=True)
class ServiceSpec(Generic[P]):
    """One service: its name (also its consumer group), handlers by event type, outputs.

    ``emits`` lists the event types its handlers may return (another is refused and
    dead-letters the input); their topics are created at start (Kafka would otherwise
    auto-create them with the broker's default partition count). ``ports`` builds the
    handlers' ports once at start, an instance of ``ports_type``. ``consumes`` and
    ``produces`` override the topics that follow from ``handlers`` and ``emits`` (a test
    reading a type from a topic of its own); ``partitions`` is used when the runtime
    creates missing topics.
    """

    name: str
    handlers: Handlers
    emits: Sequence[type[EventRecord]] = ()
    ports: Callable[[], P] | None = None
    ports_type: type[P] | None = None
    consumes: Sequence[str] | None = None
    produces: Sequence[str] | None = None
    partitions: int | None = None
    # Micro-batching: called with every decodable event of a polled batch before they are
    # handled one by one, so a service can do the batch's heavy work in one call (the
    # predictor scores all candidates in one ensemble pass). Failures here are only logged:
    # the per-event handler still runs and decides.
    before_batch: Callable[[Sequence[EventRecord], Context[Any]], None] | None = None
    # Send each output as soon as the handler yields it instead of after the handler
    # returns, so consumers start on a long handler's first outputs (the generator
    # streams a round's candidates while it is still substituting). Output ids do not
    # depend on it. The price: outputs yielded before a handler failure are already out
    # (a retry sends them again under the same ids, which consumers drop).
    stream_outputs: bool = False
    # Only one member of the group may be active (state not partition-affine to the
    # inputs, or one writer): on Kafka, instances elect a leader and the rest stand by
    # (materialabs.runtime.leadership). Embedded, one process runs everything anyway.
    single_active: bool = False

    @property
    def input_topics(self) -> list[str]:
        if self.consumes is not None:
            return list(self.consumes)
        return sorted({cls.TOPIC for cls in self.handlers})

    @property
    def output_topics(self) -> list[str]:
        if self.produces is not None:
            return list(self.produces)
        return sorted({cls.TOPIC for cls in self.emits})


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


Decoded = EventRecord | str  # the typed event, or why the record is not one


def dlq_marker(record: Record) -> str:
    return f"dlq:{record.topic}:{record.partition}:{record.offset}"


def build_ports(spec: ServiceSpec[P], given: Any = None) -> P:
    """The handlers' ports: ``given`` as is (a ports object), or the spec's, with ``given``
    (a mapping) replacing some of them; without a factory, ``ports_type(**given)``."""
    if given is not None and not isinstance(given, Mapping):
        return given  # type: ignore[no-any-return]
    overrides = dict(given or {})
    if spec.ports is not None:
        built: Any = spec.ports()
        if overrides and is_dataclass(built):
            return replace(built, **overrides)  # type: ignore[type-var,return-value]
        return built  # type: ignore[no-any-return]
    if spec.ports_type is not None:
        return spec.ports_type(**overrides)
    return SimpleNamespace(**overrides)  # type: ignore[return-value]


def build_context(spec: ServiceSpec[P], state: MutableMapping[str, Any],
                  registry: SchemaRegistry, ports: Any = None) -> Context[P]:
    return Context(service=spec.name, state=state, ports=build_ports(spec, ports),
                   registry=registry)


class RecordProcessor:
    """Decode, deduplicate, handle and encode one record; no transport in here.

    Shared by the bus runner (embedded and Kafka) and the Faust worker, so both
    dead-letter, deduplicate and name outputs identically.
    """

    def __init__(self, spec: ServiceSpec[Any], context: Context[Any], registry: SchemaRegistry,
                 handler_attempts: int = 3) -> None:
        self.spec = spec
        self.context = context
        self.registry = registry
        self.handler_attempts = handler_attempts

    def decode(self, record: Record) -> Decoded:
        """The record's typed event, or the reason it has none (for the dead letter)."""
        try:
            event = decode(record.value, self.registry,
                           key=record.key.decode("utf-8", "replace") if record.key else None,
                           topic=record.topic)
        except DecodeError as error:
            return str(error)
        try:
            return EventRecord.from_event(event)
        except (LookupError, TypeError, ValueError) as error:
            return f"invalid: {event.type} {event.payload.get('event_id', '?')}: {error}"

    def process(self, record: Record, seen: Callable[[str], bool],
                send: Callable[[Outgoing], None] | None = None,
                decoded: Decoded | None = None) -> Outcome:
        """``seen(marker)`` says whether an event id (or DLQ marker) was already handled.

        With ``send`` and a spec that streams its outputs, each output goes to ``send``
        as soon as the handler yields it, rather than into the outcome. ``decoded`` is
        the record already decoded (the runner decodes a batch once).
        """
        marker = dlq_marker(record)
        if seen(marker):
            return Outcome("duplicate")
        event = self.decode(record) if decoded is None else decoded
        if isinstance(event, str):
            return self.dead_letter(record, event)
        if seen(event.event_id):
            return Outcome("duplicate")
        handler = self.spec.handlers.get(type(event))
        if handler is None:
            if record.topic == event.TOPIC:  # another service's event on a shared topic
                return Outcome("processed", [], event.event_id)
            return self.dead_letter(record, f"invalid: {self.spec.name} does not handle "
                                            f"{event.type} events (read from {record.topic})")
        stream = send if self.spec.stream_outputs else None
        outputs, streamed, failure = self._call_handler(handler, event, stream)
        if failure is not None:
            return self.dead_letter(record, failure)
        return Outcome("processed", [self._outgoing(o, body) for o, body in outputs],
                       event.event_id, streamed)

    def _call_handler(self, handler: Handler, event: EventRecord,
                      send: Callable[[Outgoing], None] | None
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
                    results = list(handler(event, self.context) or ())
                    prepared = self._prepare_outputs(event, results)
                else:
                    prepared = []
                    # A retry yields from index 0 again: the same ids, dropped downstream.
                    for index, output in enumerate(handler(event, self.context) or ()):
                        send(self._outgoing(*self._prepare_output(event, index, output)))
                        streamed = max(streamed, index + 1)
                if unit is not None:
                    unit.commit()
                return prepared, streamed, None
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

    def _prepare_outputs(self, cause: EventRecord, results: list[Any]
                         ) -> list[tuple[Event, bytes]]:
        return [self._prepare_output(cause, index, output) for index, output in enumerate(results)]

    def _prepare_output(self, cause: EventRecord, index: int, output: Any) -> tuple[Event, bytes]:
        if not isinstance(output, EventRecord):
            raise EncodeError(f"handler returned {type(output).__name__}, expected a typed "
                              "event (materialabs.events.types)")
        if type(output) not in self.spec.emits:
            raise EncodeError(f"{self.spec.name} returned a {output.TYPE}, which its "
                              "ServiceSpec does not list in emits")
        event_id = derived_event_id(self.spec.name, cause.event_id, index)
        if output.envelope is None:  # a draft: this service's envelope, caused by the input
            envelope = new_envelope(self.spec.name, cause, event_id=event_id,
                                    occurred_at=self.context.clock())
        else:
            envelope = replace(output.envelope, event_id=event_id)
        wire = output.to_event(envelope)
        return wire, encode(wire, self.registry)

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

    def before_batch(self, events: Sequence[EventRecord]) -> None:
        """Run the spec's ``before_batch`` as one unit of work (kept if it succeeds)."""
        if self.spec.before_batch is None or not events:
            return
        unit = self.context.state if isinstance(self.context.state, JsonState) else None
        try:
            self.spec.before_batch(events, self.context)
            if unit is not None:
                unit.commit()
        except Exception as error:  # noqa: BLE001 - an optimisation must not lose records
            if unit is not None:
                unit.rollback()
            log.warning("%s: batch preparation failed (%r); handling one by one",
                        self.spec.name, error)


class ServiceRunner:
    """Drives one service over any bus port adapter (embedded or Kafka)."""

    # Streamed outputs go to the producer in chunks: kafka-python (the Kafka client before
    # librdkafka) woke its sender thread for each new batch, and in a busy process every
    # wake-up waited for the GIL: one send per output cost a streaming generator seconds
    # per round. Chunks cost nothing with librdkafka and keep the embedded bus's writes few.
    STREAM_CHUNK = 50
    STREAM_LINGER_S = 0.1

    def __init__(self, spec: ServiceSpec[Any], bus: Bus, *,
                 registry: SchemaRegistry | None = None, group: str | None = None,
                 handler_attempts: int = 3, ports: Any = None) -> None:
        self.spec = spec
        self.bus = bus
        self.registry = registry or default_registry()
        self.stats = RunStats()
        bus.create_topics([*spec.input_topics, *(dlq_topic(t) for t in spec.input_topics),
                           *spec.output_topics], spec.partitions)
        # Processed ids and state belong with the group's offsets: a new group (a test's
        # own group, a replay) starts with fresh ones.
        self.group = group or spec.name
        self.processed_ids = bus.table(f"{self.group}.processed")
        self.state_table = bus.table(f"{self.group}.state")
        self.state = JsonState(self.state_table)
        self.context = build_context(spec, self.state, self.registry, ports)
        self.processor = RecordProcessor(spec, self.context, self.registry, handler_attempts)
        self.producer = bus.producer()
        self.consumer = bus.consumer(self.group, spec.input_topics)
        self._streamed: list[Outgoing] = []
        self._stream_since = 0.0

    # -- the loop -------------------------------------------------------------------
    def step(self, timeout_s: float = 0.2, max_records: int = 500) -> int:
        """Poll one batch, handle it, make it durable, commit. Returns records seen."""
        records = self.consumer.poll(timeout_s, max_records)
        # After the poll: an assignment that changed during it may already have brought
        # records of a partition another member handled until now (and wrote state for).
        if self.consumer.take_rebalanced():
            self.processed_ids.catch_up()
            self.state_table.catch_up()
            self.state.refresh()
        if not records:
            return 0
        self.context.batch.clear()
        decoded = [self.processor.decode(record) for record in records]
        self.processor.before_batch([e for e in decoded if not isinstance(e, str)])
        for record, event in zip(records, decoded, strict=True):
            outcome = self.processor.process(record, self.processed_ids.__contains__,
                                             self._stream, event)
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
        self.state.write_back()
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

    def _count(self, outcome: Outcome) -> None:
        count(self.stats, outcome)

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


def count(stats: RunStats, outcome: Outcome) -> None:
    """Add one record's outcome to ``stats``."""
    if outcome.kind == "processed":
        stats.processed += 1
        stats.emitted += len(outcome.outgoing) + outcome.streamed
    elif outcome.kind == "duplicate":
        stats.duplicates += 1
    else:
        stats.dead_lettered += 1


def dispatch(handlers: Handlers, event: EventRecord | Event,
             ctx: Context[Any]) -> Iterator[EventRecord]:
    """A handler run outside the runtime (tests, tools): the handler of ``event``'s type
    (none: nothing), its outputs as they come, each draft given ``ctx``'s envelope.

    No unit of work, retries or output ids: that is :class:`ServiceRunner`'s job.
    """
    typed = EventRecord.from_event(event) if isinstance(event, Event) else event
    handler = handlers.get(type(typed))
    if handler is None:
        return
    for output in handler(typed, ctx) or ():
        yield output if output.envelope is not None else ctx.event(output, typed)


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
