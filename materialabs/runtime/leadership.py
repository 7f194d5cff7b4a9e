"""Single-active services on Kafka: one leader, standbys that take over, and a fence.

Some services keep state that is not partition-affine to their inputs (see the scale-out
section of ``docs/events.md``), so their group may have only one active member. Each
instance of such a service is started the same way; they elect the leader among
themselves through Kafka:

* **Lease.** Every instance joins the consumer group ``<group>.lease`` on the
  one-partition topic ``materialabs.lease.<group>``. The member the group assigns that
  partition is the leader; the rest are standbys. The assignor is cooperative-sticky, so
  a standby joining or leaving never takes the partition from a live leader. When the
  leader dies, its session times out (``LEASE_SESSION_TIMEOUT_MS``) and the group gives
  the partition to a standby; when it stops cleanly it leaves the group, at once.
* **Start.** A standby builds the service's ports ahead (the acquisition's hull takes
  seconds), except a ledger writer, whose lock belongs to the leader: that one it closes
  at once and opens on taking the lease. Only on taking the lease does an instance build
  the runner: its state and processed-ids tables read to their end, and its consumer of
  the service's real topics.
* **Fence.** The leader's bus is transactional, with one transactional id per group
  (``materialabs.<group>.leader``). Starting it makes the broker abort the previous
  leader's open transaction and refuse anything that producer sends afterwards. Every
  batch (outputs, state, processed ids and the consumer offsets, through
  ``send_offsets_to_transaction``) is one transaction, and readers only see committed
  records, so a deposed leader that wakes up and flushes cannot change what the new
  leader reads, nor commit offsets past it. Its consumer is the static member
  ``<group>.leader``, so the new leader takes the old one's place in the group without
  waiting for its session to expire, and the old one's next heartbeat or commit is
  refused.

Takeover time after a SIGKILL is thus the lease's session timeout, plus building the
runner, plus the first fetch (measured in ``docs/events.md``).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient

from materialabs.bus.kafka import (
    ADMIN_TIMEOUT_S,
    MAX_POLL_INTERVAL_MS,
    KafkaBus,
    _librdkafka_log,
)
from materialabs.bus.port import BusError
from materialabs.runtime.core import RunStats, ServiceRunner, ServiceSpec

log = logging.getLogger(__name__)

LEASE_TOPIC_PREFIX = "materialabs.lease."
# The broker's default group.min.session.timeout.ms: the shortest a stock broker accepts.
# A dead leader's lease moves this long after its last heartbeat.
LEASE_SESSION_TIMEOUT_MS = 6_000
LEASE_HEARTBEAT_MS = 1_000
RETRY_START_S = 1.0  # after a failed start as leader (e.g. a deposed leader still holds a lock)


def lease_topic(group: str) -> str:
    return LEASE_TOPIC_PREFIX + group


def lease_group(group: str) -> str:
    return f"{group}.lease"


def transactional_id(group: str) -> str:
    return f"materialabs.{group}.leader"


def leader_instance_id(group: str) -> str:
    return f"{group}.leader"


def member_client_id(member: str, pid: int | None = None) -> str:
    """How a lease member names itself to the broker: ``<instance>/<pid>``."""
    return f"{member}/{os.getpid() if pid is None else pid}"


def leader_bus(bootstrap: str, group: str) -> KafkaBus:
    """The bus a leader of ``group`` runs on: transactional and a static member."""
    return KafkaBus(bootstrap, transactional_id=transactional_id(group),
                    group_instance_id=leader_instance_id(group))


class Lease:
    """Membership in a group's lease: ``held`` while this member is assigned its partition."""

    def __init__(self, bootstrap: str, group: str, member: str,
                 session_timeout_ms: int = LEASE_SESSION_TIMEOUT_MS) -> None:
        self.group = group
        self.member = member
        self.held = False
        admin = KafkaBus(bootstrap)
        admin.create_topics([lease_topic(group)], partitions=1)
        admin.close()
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": lease_group(group),
            "client.id": member_client_id(member),
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": min(LEASE_HEARTBEAT_MS, session_timeout_ms // 3),
            # Heartbeats come from librdkafka's own thread; polls only serve callbacks, and
            # a leader polls between batches, which may be long (the retrainer's).
            "max.poll.interval.ms": MAX_POLL_INTERVAL_MS,
            "enable.auto.commit": False,
            "logger": _librdkafka_log,
        })
        self._consumer.subscribe([lease_topic(group)], on_assign=self._assigned,
                                 on_revoke=self._released, on_lost=self._released)

    def _assigned(self, consumer: Any, partitions: list[Any]) -> None:
        if partitions:
            self.held = True

    def _released(self, consumer: Any, partitions: list[Any]) -> None:
        if partitions:
            self.held = False

    def poll(self, timeout_s: float = 0.0) -> bool:
        """Serve the group's callbacks (the lease topic carries no records); still held?"""
        self._consumer.poll(timeout_s)
        return self.held

    def wait(self, stop: threading.Event | None = None, poll_s: float = 0.2) -> bool:
        """Block until this member holds the lease (True) or ``stop`` is set (False)."""
        while not (stop and stop.is_set()):
            if self.poll(poll_s):
                return True
        return False

    def close(self) -> None:
        """Leave the lease group: a standby takes the lease without waiting for a timeout."""
        self.held = False
        self._consumer.close()


def serve_single_active(spec: ServiceSpec, bootstrap: str, member: str,
                        stop: threading.Event, *, group: str | None = None,
                        idle_exit_s: float | None = None, poll_timeout_s: float = 0.2,
                        max_records: int = 500,
                        say: Callable[[str], None] = log.info) -> RunStats:
    """Run ``spec`` as one instance of a single-active service: standby until it holds the
    lease, then leader until it loses it (then standby again) or ``stop`` is set."""
    group = group or spec.name
    lease = Lease(bootstrap, group, member)
    stats = RunStats()
    try:
        say(f"{member}: standby for {group}, waiting for the lease")
        ready_spec, ports = _ports_ahead(spec, member, say)
        while not stop.is_set():
            waited = time.monotonic()
            if not lease.wait(stop):
                break
            say(f"{member}: took the lease of {group} after {time.monotonic() - waited:.1f} s")
            if _lead(ready_spec, ports, bootstrap, group, member, lease, stop, stats,
                     idle_exit_s, poll_timeout_s, max_records, say):
                break  # idle exit
            say(f"{member}: standby for {group}, waiting for the lease")
    finally:
        lease.close()
    return stats


def _ports_ahead(spec: ServiceSpec, member: str, say: Callable[[str], None]
                 ) -> tuple[ServiceSpec, Any]:
    """The spec to lead with and the ports built for it ahead, if they could be."""
    if spec.ports is None:
        return spec, None
    started = time.monotonic()
    try:
        ports = spec.ports()
    except Exception as error:  # noqa: BLE001 - e.g. the leader holds the ledger's lock
        say(f"{member}: ports are built on taking the lease ({error})")
        return spec, None
    ledger = getattr(ports, "ledger", None)
    if callable(getattr(ledger, "close", None)):
        # A ledger writer (a read view has no close): its lock is the leader's.
        ledger.close()
        return spec, None
    say(f"{member}: ports ready in {time.monotonic() - started:.1f} s")
    return replace(spec, ports=None), ports


def _lead(spec: ServiceSpec, ports: Any, bootstrap: str, group: str,
          member: str, lease: Lease, stop: threading.Event, stats: RunStats,
          idle_exit_s: float | None, poll_timeout_s: float, max_records: int,
          say: Callable[[str], None]) -> bool:
    """Lead until the lease is lost or ``stop``; True only for an idle exit."""
    started = time.monotonic()
    bus = leader_bus(bootstrap, group)
    try:
        runner = ServiceRunner(spec, bus, group=group, ports=ports)
    except Exception as error:  # noqa: BLE001 - e.g. the old leader still holds a file lock
        say(f"{member}: could not start as leader of {group} ({error}); retrying")
        _close_quietly(bus.close)
        stop.wait(RETRY_START_S)
        return False
    ready = False
    last_activity = time.monotonic()
    try:
        while not stop.is_set() and lease.poll(0):
            seen = runner.step(poll_timeout_s, max_records)
            if not ready and runner.consumer.ready():
                ready = True
                say(f"{member}: leading {group}, consuming {', '.join(spec.input_topics)} "
                    f"{time.monotonic() - started:.1f} s after taking the lease")
            if seen or not runner.consumer.ready():
                last_activity = time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - last_activity >= idle_exit_s:
                return True
        if not stop.is_set():
            say(f"{member}: lost the lease of {group}; stopping as leader")
    except BusError as error:
        # Fenced (a newer leader) or a batch the broker refused: what this member holds in
        # memory may be ahead of what is committed, so it starts over from Kafka.
        say(f"{member}: stepping down as leader of {group}: {error}")
    finally:
        for name, value in runner.stats.as_dict().items():
            setattr(stats, name, getattr(stats, name) + value)
        _close_quietly(runner.close)
        _close_ports(runner)
        _close_quietly(bus.close)
    return False


def _close_ports(runner: ServiceRunner) -> None:
    # The ledger's writer holds a file lock the next leader needs. (Other ports, such as
    # the store, are built once per process and shared: they stay open.)
    close = getattr(getattr(runner.context.ports, "ledger", None), "close", None)
    if callable(close):
        _close_quietly(close)


def _close_quietly(close: Callable[[], Any]) -> None:
    try:
        close()
    except (BusError, KafkaException, OSError) as error:
        log.info("closing after leadership: %s", error)


def lease_holders(bootstrap: str, groups: Iterable[str], timeout_s: float = ADMIN_TIMEOUT_S
                  ) -> Mapping[str, str | None]:
    """For each service group that has a lease group with members: the client id
    (``<instance>/<pid>``) of the member holding the lease, or None mid-rebalance.
    Groups without lease members (not single-active, or not running) are left out, and so
    are those the broker did not describe within ``timeout_s`` (a group coordinator that
    is still loading, just after the broker started)."""
    groups = list(groups)
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "materialabs-status",
                         "logger": _librdkafka_log})
    futures = admin.describe_consumer_groups([lease_group(g) for g in groups],
                                             request_timeout=timeout_s)
    holders: dict[str, str | None] = {}
    for group in groups:
        try:
            description = futures[lease_group(group)].result(timeout_s)
        except (KafkaException, concurrent.futures.TimeoutError) as error:
            log.info("group %s on %s not described: %r", lease_group(group), bootstrap, error)
            continue
        if not description.members:
            continue
        holders[group] = next(
            (m.client_id for m in description.members
             if any(tp.topic == lease_topic(group)
                    for tp in (m.assignment.topic_partitions if m.assignment else ()))),
            None)
    return holders
