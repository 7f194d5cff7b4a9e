"""A generated candidate crystal and where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from materialabs.crystals import Crystal


@dataclass(frozen=True)
class Candidate:
    """One proposed crystal with its provenance.

    ``method`` is ``"saps"`` or ``"airss"``; ``parent_ids`` names the parent
    structures (empty for AIRSS); ``params`` holds what a person needs to reproduce
    the proposal (substitutions made, space group drawn, volume scale, ...);
    ``seed`` is the batch seed the candidate was drawn with.
    """

    crystal: Crystal
    method: str
    parent_ids: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    seed: int = 0

    @cached_property
    def candidate_id(self) -> str:
        # Asked for several times per candidate (dedup, the event, its key); the key
        # hashes a JSON dump of the sorted sites.
        return self.crystal.content_key()

    def as_record(self) -> dict[str, Any]:
        """JSON-ready dict: the crystal record plus provenance."""
        return {
            "candidate_id": self.candidate_id,
            "method": self.method,
            "parent_ids": list(self.parent_ids),
            "params": self.params,
            "seed": self.seed,
            "crystal": self.crystal.as_record(),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Candidate:
        return cls(
            crystal=Crystal.from_record(record["crystal"]),
            method=str(record["method"]),
            parent_ids=tuple(record.get("parent_ids", ())),
            params=dict(record.get("params", {})),
            seed=int(record.get("seed", 0)),
        )
