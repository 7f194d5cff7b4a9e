"""The generic service runtime: a handler plus a bus make a service."""

from materialabs.runtime.core import (
    TYPE_HEADER,
    Context,
    Handler,
    Handlers,
    InvalidEvent,
    Outcome,
    Outgoing,
    RecordProcessor,
    RunStats,
    ServiceRunner,
    ServiceSpec,
    build_context,
    dispatch,
    run_services,
)
from materialabs.runtime.state import JsonState

__all__ = ["TYPE_HEADER", "Context", "Handler", "Handlers", "InvalidEvent", "JsonState",
           "Outcome", "Outgoing", "RecordProcessor", "RunStats", "ServiceRunner", "ServiceSpec",
           "build_context", "dispatch", "run_services"]
