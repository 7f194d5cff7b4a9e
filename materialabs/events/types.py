"""Typed events and records, generated from schemas/ by `materialabs schemas generate`.

Do not edit: change the .avsc files, then run the command again (a test fails while this
module and the schemas disagree). See materialabs/events/typed.py for the base classes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from materialabs.events.typed import (
    EMPTY_MAP,
    AvroRecord,
    Envelope,
    EventRecord,
    as_tuple,
    build,
    envelope_avro,
    envelope_of,
    set_field,
)


class CampaignStatus(StrEnum):
    """CampaignStatus symbols."""

    COMPLETED = "completed"
    BUDGET_EXHAUSTED = "budget_exhausted"
    FAILED = "failed"
    STOPPED = "stopped"


class DftStatus(StrEnum):
    """DftStatus symbols."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    NO_LABEL = "no_label"


class LedgerKind(StrEnum):
    """Kinds of ledger entry."""

    DATASET = "dataset"
    MODEL = "model"
    KEY_REGISTRATION = "key_registration"
    KEY_REVOCATION = "key_revocation"
    CHECKPOINT = "checkpoint"
    OTHER = "other"


class PromotionReason(StrEnum):
    """PromotionReason symbols."""

    DFT_CONFIRMED = "dft_confirmed"
    PREDICTED_CONFIDENTLY = "predicted_confidently"


class RejectionCode(StrEnum):
    """RejectionCode symbols."""

    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    REVOKED_KEY = "revoked_key"
    REPLAY = "replay"
    INVALID_RECORD = "invalid_record"
    MISSING_CONTENT = "missing_content"
    OTHER = "other"


class TargetDirection(StrEnum):
    """TargetDirection symbols."""

    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"
    WINDOW = "window"


@dataclass(frozen=True, kw_only=True, init=False)
class CampaignTarget(AvroRecord):
    """One property goal."""

    AVRO_NAME: ClassVar[str] = "materialabs.events.CampaignTarget"
    FIELDS: ClassVar[tuple[str, ...]] = ("property", "unit", "direction", "low", "high")

    property: str
    """Property, e.g. 'band_gap'."""
    unit: str
    """Unit of low/high, e.g. 'eV'."""
    direction: TargetDirection
    """Goal for the property."""
    low: float | None = None
    """Lower bound (window) or threshold (maximize), in unit."""
    high: float | None = None
    """Upper bound (window) or threshold (minimize), in unit."""

    def __init__(
        self,
        *,
        property: str,
        unit: str,
        direction: TargetDirection | str,
        low: float | None = None,
        high: float | None = None,
    ) -> None:
        set_field(self, "property", property)
        set_field(self, "unit", unit)
        set_field(self, "direction", TargetDirection(direction))
        set_field(self, "low", None if low is None else low)
        set_field(self, "high", None if high is None else high)

    def to_avro(self) -> dict[str, Any]:
        return {
            "property": self.property,
            "unit": self.unit,
            "direction": self.direction.value,
            "low": self.low,
            "high": self.high,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any]) -> CampaignTarget:
        return build(cls, {
            "property": data["property"],
            "unit": data["unit"],
            "direction": TargetDirection(data["direction"]),
            "low": data.get("low"),
            "high": data.get("high"),
        })


@dataclass(frozen=True, kw_only=True, init=False)
class Crystal(AvroRecord):
    """A periodic crystal as it travels in events (materialabs.crystals.Crystal.as_record())."""

    AVRO_NAME: ClassVar[str] = "materialabs.events.Crystal"
    FIELDS: ClassVar[tuple[str, ...]] = ("lattice_angstrom", "species", "frac_coords")

    lattice_angstrom: tuple[float, ...]
    """Cell vectors as a row-major 3x3 matrix (9 numbers), in Å; row i is lattice vector i."""
    species: tuple[str, ...]
    """Element symbol of each site, e.g. 'Sr'."""
    frac_coords: tuple[float, ...]
    """Fractional coordinates, flat, 3 numbers per site in the order of 'species'."""

    def __init__(
        self,
        *,
        lattice_angstrom: Iterable[float],
        species: Iterable[str],
        frac_coords: Iterable[float],
    ) -> None:
        set_field(self, "lattice_angstrom", as_tuple(lattice_angstrom))
        set_field(self, "species", as_tuple(species))
        set_field(self, "frac_coords", as_tuple(frac_coords))

    def to_avro(self) -> dict[str, Any]:
        return {
            "lattice_angstrom": list(self.lattice_angstrom),
            "species": list(self.species),
            "frac_coords": list(self.frac_coords),
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any]) -> Crystal:
        return build(cls, {
            "lattice_angstrom": tuple(data["lattice_angstrom"]),
            "species": tuple(data["species"]),
            "frac_coords": tuple(data["frac_coords"]),
        })


@dataclass(frozen=True, kw_only=True, init=False)
class ParentCrystal(AvroRecord):
    """A DFT-confirmed stable candidate offered as a new parent."""

    AVRO_NAME: ClassVar[str] = "materialabs.events.ParentCrystal"
    FIELDS: ClassVar[tuple[str, ...]] = ("candidate_id", "crystal")

    candidate_id: str
    """Content key of the crystal."""
    crystal: Crystal
    """The parent structure."""

    def __init__(
        self,
        *,
        candidate_id: str,
        crystal: Crystal | Mapping[str, Any],
    ) -> None:
        set_field(self, "candidate_id", candidate_id)
        set_field(self, "crystal", crystal if type(crystal) is Crystal else Crystal.coerce(crystal))

    def to_avro(self) -> dict[str, Any]:
        return {
            "candidate_id": self.candidate_id,
            "crystal": self.crystal.to_avro(),
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any]) -> ParentCrystal:
        return build(cls, {
            "candidate_id": data["candidate_id"],
            "crystal": Crystal.from_avro(data["crystal"]),
        })


@dataclass(frozen=True, kw_only=True, init=False)
class Prediction(AvroRecord):
    """A model's prediction of one property: ensemble mean and standard deviation."""

    AVRO_NAME: ClassVar[str] = "materialabs.events.Prediction"
    FIELDS: ClassVar[tuple[str, ...]] = ("target", "mean", "sigma", "unit")

    target: str
    """Property name, e.g. 'formation_energy_per_atom'."""
    mean: float
    """Predicted value, in 'unit'."""
    sigma: float
    """Predictive standard deviation (>= 0), in 'unit'."""
    unit: str
    """Unit of mean and sigma, e.g. 'eV/atom', 'eV'."""

    def __init__(
        self,
        *,
        target: str,
        mean: float,
        sigma: float,
        unit: str,
    ) -> None:
        set_field(self, "target", target)
        set_field(self, "mean", mean)
        set_field(self, "sigma", sigma)
        set_field(self, "unit", unit)

    def to_avro(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "mean": self.mean,
            "sigma": self.sigma,
            "unit": self.unit,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any]) -> Prediction:
        return build(cls, {
            "target": data["target"],
            "mean": data["mean"],
            "sigma": data["sigma"],
            "unit": data["unit"],
        })


@dataclass(frozen=True, kw_only=True, init=False)
class PropertyValue(AvroRecord):
    """A property value with its origin (DFT, model, experiment)."""

    AVRO_NAME: ClassVar[str] = "materialabs.events.PropertyValue"
    FIELDS: ClassVar[tuple[str, ...]] = ("name", "value", "unit", "sigma", "source")

    name: str
    """Property name, e.g. 'band_gap'."""
    value: float
    """Value, in 'unit'."""
    unit: str
    """Unit of value and sigma, e.g. 'eV/atom', 'eV', 'GPa'."""
    sigma: float | None = None
    """Standard deviation in 'unit' when known (model predictions); null for DFT."""
    source: str
    """Where the value comes from: 'dft', 'model', 'experiment'."""

    def __init__(
        self,
        *,
        name: str,
        value: float,
        unit: str,
        sigma: float | None = None,
        source: str,
    ) -> None:
        set_field(self, "name", name)
        set_field(self, "value", value)
        set_field(self, "unit", unit)
        set_field(self, "sigma", None if sigma is None else sigma)
        set_field(self, "source", source)

    def to_avro(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "sigma": self.sigma,
            "source": self.source,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any]) -> PropertyValue:
        return build(cls, {
            "name": data["name"],
            "value": data["value"],
            "unit": data["unit"],
            "sigma": data.get("sigma"),
            "source": data["source"],
        })


@dataclass(frozen=True, kw_only=True, init=False)
class CampaignFinished(EventRecord):
    """A discovery campaign ended."""

    TYPE: ClassVar[str] = "CampaignFinished"
    TOPIC: ClassVar[str] = "campaigns"
    KEY_FIELD: ClassVar[str | None] = "campaign_id"
    FINGERPRINT: ClassVar[str] = "f7d8b3d2f45209ce"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "status",
        "rounds_completed",
        "dft_calls_used",
        "promoted_count",
        "best_candidate_ids",
        "report_cid",
        "message",
    )

    status: CampaignStatus
    """How it ended."""
    rounds_completed: int
    """Rounds run."""
    dft_calls_used: int
    """DFT calculations spent."""
    promoted_count: int
    """Candidates promoted."""
    best_candidate_ids: tuple[str, ...] = ()
    """Best candidates, best first."""
    report_cid: str | None = None
    """CID of the campaign report."""
    message: str = ""
    """Summary or error text."""

    def __init__(
        self,
        *,
        status: CampaignStatus | str,
        rounds_completed: int,
        dft_calls_used: int,
        promoted_count: int,
        best_candidate_ids: Iterable[str] = (),
        report_cid: str | None = None,
        message: str = "",
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "status", CampaignStatus(status))
        set_field(self, "rounds_completed", rounds_completed)
        set_field(self, "dft_calls_used", dft_calls_used)
        set_field(self, "promoted_count", promoted_count)
        set_field(self, "best_candidate_ids", as_tuple(best_candidate_ids))
        set_field(self, "report_cid", None if report_cid is None else report_cid)
        set_field(self, "message", message)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "status": self.status.value,
            "rounds_completed": self.rounds_completed,
            "dft_calls_used": self.dft_calls_used,
            "promoted_count": self.promoted_count,
            "best_candidate_ids": list(self.best_candidate_ids),
            "report_cid": self.report_cid,
            "message": self.message,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> CampaignFinished:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "status": CampaignStatus(data["status"]),
            "rounds_completed": data["rounds_completed"],
            "dft_calls_used": data["dft_calls_used"],
            "promoted_count": data["promoted_count"],
            "best_candidate_ids": tuple(data.get("best_candidate_ids", ())),
            "report_cid": data.get("report_cid"),
            "message": data.get("message", ""),
        })


@dataclass(frozen=True, kw_only=True, init=False)
class CampaignStarted(EventRecord):
    """A researcher started a discovery campaign."""

    TYPE: ClassVar[str] = "CampaignStarted"
    TOPIC: ClassVar[str] = "campaigns"
    KEY_FIELD: ClassVar[str | None] = "campaign_id"
    FINGERPRINT: ClassVar[str] = "2f3dd1c429af0ba0"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "name",
        "elements",
        "targets",
        "methods",
        "policy",
        "policy_params_json",
        "dft_backend",
        "dft_budget",
        "rounds",
        "candidates_per_round",
        "max_sites",
        "seed",
    )

    name: str
    """Human-readable campaign name."""
    elements: tuple[str, ...]
    """Chemical space: element symbols candidates may contain."""
    targets: tuple[CampaignTarget, ...]
    """Property goals."""
    methods: tuple[str, ...]
    """Generation methods, e.g. ['saps', 'airss']."""
    policy: str
    """Acquisition policy, e.g. 'ucb', 'ei', 'random'."""
    policy_params_json: str = "{}"
    """Policy parameters as a JSON object."""
    dft_backend: str = "replay"
    """DFT backend for the campaign."""
    dft_budget: int
    """Total number of DFT calculations allowed."""
    rounds: int
    """Number of active-learning rounds."""
    candidates_per_round: int = 100
    """Candidates generated per round."""
    max_sites: int = 20
    """Largest cell generated, in sites."""
    seed: int
    """Master random seed."""

    def __init__(
        self,
        *,
        name: str,
        elements: Iterable[str],
        targets: Iterable[CampaignTarget | Mapping[str, Any]],
        methods: Iterable[str],
        policy: str,
        policy_params_json: str = "{}",
        dft_backend: str = "replay",
        dft_budget: int,
        rounds: int,
        candidates_per_round: int = 100,
        max_sites: int = 20,
        seed: int,
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "name", name)
        set_field(self, "elements", as_tuple(elements))
        set_field(self, "targets", tuple(CampaignTarget.coerce(i0) for i0 in targets))
        set_field(self, "methods", as_tuple(methods))
        set_field(self, "policy", policy)
        set_field(self, "policy_params_json", policy_params_json)
        set_field(self, "dft_backend", dft_backend)
        set_field(self, "dft_budget", dft_budget)
        set_field(self, "rounds", rounds)
        set_field(self, "candidates_per_round", candidates_per_round)
        set_field(self, "max_sites", max_sites)
        set_field(self, "seed", seed)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "name": self.name,
            "elements": list(self.elements),
            "targets": [i0.to_avro() for i0 in self.targets],
            "methods": list(self.methods),
            "policy": self.policy,
            "policy_params_json": self.policy_params_json,
            "dft_backend": self.dft_backend,
            "dft_budget": self.dft_budget,
            "rounds": self.rounds,
            "candidates_per_round": self.candidates_per_round,
            "max_sites": self.max_sites,
            "seed": self.seed,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> CampaignStarted:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "name": data["name"],
            "elements": tuple(data["elements"]),
            "targets": tuple([CampaignTarget.from_avro(i0) for i0 in data["targets"]]),
            "methods": tuple(data["methods"]),
            "policy": data["policy"],
            "policy_params_json": data.get("policy_params_json", "{}"),
            "dft_backend": data.get("dft_backend", "replay"),
            "dft_budget": data["dft_budget"],
            "rounds": data["rounds"],
            "candidates_per_round": data.get("candidates_per_round", 100),
            "max_sites": data.get("max_sites", 20),
            "seed": data["seed"],
        })


@dataclass(frozen=True, kw_only=True, init=False)
class CandidateGenerated(EventRecord):
    """A generator proposed a new candidate crystal."""

    TYPE: ClassVar[str] = "CandidateGenerated"
    TOPIC: ClassVar[str] = "candidates.generated"
    KEY_FIELD: ClassVar[str | None] = "candidate_id"
    FINGERPRINT: ClassVar[str] = "692ad748e1263fcf"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "candidate_id",
        "crystal",
        "method",
        "parent_ids",
        "params_json",
        "seed",
        "round",
        "model_cid",
    )

    candidate_id: str
    """Content key of the crystal (Crystal.content_key()); the message key."""
    crystal: Crystal
    """The proposed structure."""
    method: str
    """Generation method: 'saps', 'airss', ..."""
    parent_ids: tuple[str, ...] = ()
    """Ids of the structures this one was derived from (SAPS prototypes)."""
    params_json: str = "{}"
    """Method parameters as a JSON object."""
    seed: int
    """Random seed that reproduces this candidate."""
    round: int = 0
    """Campaign round in which the candidate was generated."""
    model_cid: str | None = None
    """Model the predictor must use for this candidate (from RoundStarted); null = its current
    model.
    """

    def __init__(
        self,
        *,
        candidate_id: str,
        crystal: Crystal | Mapping[str, Any],
        method: str,
        parent_ids: Iterable[str] = (),
        params_json: str = "{}",
        seed: int,
        round: int = 0,
        model_cid: str | None = None,
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "candidate_id", candidate_id)
        set_field(self, "crystal", crystal if type(crystal) is Crystal else Crystal.coerce(crystal))
        set_field(self, "method", method)
        set_field(self, "parent_ids", as_tuple(parent_ids))
        set_field(self, "params_json", params_json)
        set_field(self, "seed", seed)
        set_field(self, "round", round)
        set_field(self, "model_cid", None if model_cid is None else model_cid)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "candidate_id": self.candidate_id,
            "crystal": self.crystal.to_avro(),
            "method": self.method,
            "parent_ids": list(self.parent_ids),
            "params_json": self.params_json,
            "seed": self.seed,
            "round": self.round,
            "model_cid": self.model_cid,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> CandidateGenerated:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "candidate_id": data["candidate_id"],
            "crystal": Crystal.from_avro(data["crystal"]),
            "method": data["method"],
            "parent_ids": tuple(data.get("parent_ids", ())),
            "params_json": data.get("params_json", "{}"),
            "seed": data["seed"],
            "round": data.get("round", 0),
            "model_cid": data.get("model_cid"),
        })


@dataclass(frozen=True, kw_only=True, init=False)
class CandidatePredicted(EventRecord):
    """The predictor's GNN ensemble scored a candidate."""

    TYPE: ClassVar[str] = "CandidatePredicted"
    TOPIC: ClassVar[str] = "candidates.predicted"
    KEY_FIELD: ClassVar[str | None] = "candidate_id"
    FINGERPRINT: ClassVar[str] = "eab3d9ebf31e537f"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "candidate_id",
        "crystal",
        "predictions",
        "model_cid",
        "round",
    )

    candidate_id: str
    """Content key of the crystal."""
    crystal: Crystal
    """The scored structure."""
    predictions: tuple[Prediction, ...]
    """One entry per predicted property."""
    model_cid: str
    """CID of the model weights used (verified against the ledger)."""
    round: int = 0
    """Campaign round."""

    def __init__(
        self,
        *,
        candidate_id: str,
        crystal: Crystal | Mapping[str, Any],
        predictions: Iterable[Prediction | Mapping[str, Any]],
        model_cid: str,
        round: int = 0,
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "candidate_id", candidate_id)
        set_field(self, "crystal", crystal if type(crystal) is Crystal else Crystal.coerce(crystal))
        set_field(self, "predictions", tuple(Prediction.coerce(i0) for i0 in predictions))
        set_field(self, "model_cid", model_cid)
        set_field(self, "round", round)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "candidate_id": self.candidate_id,
            "crystal": self.crystal.to_avro(),
            "predictions": [i0.to_avro() for i0 in self.predictions],
            "model_cid": self.model_cid,
            "round": self.round,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> CandidatePredicted:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "candidate_id": data["candidate_id"],
            "crystal": Crystal.from_avro(data["crystal"]),
            "predictions": tuple([Prediction.from_avro(i0) for i0 in data["predictions"]]),
            "model_cid": data["model_cid"],
            "round": data.get("round", 0),
        })


@dataclass(frozen=True, kw_only=True, init=False)
class CandidatePromoted(EventRecord):
    """A candidate is worth a subscriber's attention."""

    TYPE: ClassVar[str] = "CandidatePromoted"
    TOPIC: ClassVar[str] = "candidates.promoted"
    KEY_FIELD: ClassVar[str | None] = "candidate_id"
    FINGERPRINT: ClassVar[str] = "1297d31e387ff11f"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "candidate_id",
        "crystal",
        "reduced_formula",
        "chemical_system",
        "reason",
        "values",
        "model_cid",
    )

    candidate_id: str
    """Content key of the crystal."""
    crystal: Crystal
    """The structure."""
    reduced_formula: str
    """Reduced formula, e.g. 'SrTiO3' (for subscriber filters)."""
    chemical_system: str
    """Elements joined by '-', alphabetical, e.g. 'O-Sr-Ti'."""
    reason: PromotionReason
    """dft_confirmed: a DFT result meets the target; predicted_confidently: the model meets it with
    small sigma.
    """
    values: tuple[PropertyValue, ...]
    """The values that justify the promotion."""
    model_cid: str | None = None
    """Model behind predicted values."""

    def __init__(
        self,
        *,
        candidate_id: str,
        crystal: Crystal | Mapping[str, Any],
        reduced_formula: str,
        chemical_system: str,
        reason: PromotionReason | str,
        values: Iterable[PropertyValue | Mapping[str, Any]],
        model_cid: str | None = None,
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "candidate_id", candidate_id)
        set_field(self, "crystal", crystal if type(crystal) is Crystal else Crystal.coerce(crystal))
        set_field(self, "reduced_formula", reduced_formula)
        set_field(self, "chemical_system", chemical_system)
        set_field(self, "reason", PromotionReason(reason))
        set_field(self, "values", tuple(PropertyValue.coerce(i0) for i0 in values))
        set_field(self, "model_cid", None if model_cid is None else model_cid)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "candidate_id": self.candidate_id,
            "crystal": self.crystal.to_avro(),
            "reduced_formula": self.reduced_formula,
            "chemical_system": self.chemical_system,
            "reason": self.reason.value,
            "values": [i0.to_avro() for i0 in self.values],
            "model_cid": self.model_cid,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> CandidatePromoted:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "candidate_id": data["candidate_id"],
            "crystal": Crystal.from_avro(data["crystal"]),
            "reduced_formula": data["reduced_formula"],
            "chemical_system": data["chemical_system"],
            "reason": PromotionReason(data["reason"]),
            "values": tuple([PropertyValue.from_avro(i0) for i0 in data["values"]]),
            "model_cid": data.get("model_cid"),
        })


@dataclass(frozen=True, kw_only=True, init=False)
class DatasetAccepted(EventRecord):
    """Ingest verified an upload and the ledger recorded it as a dataset."""

    TYPE: ClassVar[str] = "DatasetAccepted"
    TOPIC: ClassVar[str] = "datasets.accepted"
    KEY_FIELD: ClassVar[str | None] = "dataset_cid"
    FINGERPRINT: ClassVar[str] = "7cb55f1800bc5d37"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "upload_id",
        "lab",
        "manifest_cid",
        "dataset_cid",
        "signature_b64",
        "public_key_b64",
        "record_count",
        "ledger_seq",
    )

    upload_id: str
    """Id of the accepted upload."""
    lab: str
    """Name of the submitting lab."""
    manifest_cid: str
    """CIDv1 of the upload manifest."""
    dataset_cid: str
    """CIDv1 of the normalised dataset as stored."""
    signature_b64: str
    """The lab's Ed25519 signature over the manifest, base64."""
    public_key_b64: str
    """The lab's Ed25519 public key, base64."""
    record_count: int
    """Number of material records accepted."""
    ledger_seq: int
    """Sequence number of the ledger entry that records the dataset."""

    def __init__(
        self,
        *,
        upload_id: str,
        lab: str,
        manifest_cid: str,
        dataset_cid: str,
        signature_b64: str,
        public_key_b64: str,
        record_count: int,
        ledger_seq: int,
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "upload_id", upload_id)
        set_field(self, "lab", lab)
        set_field(self, "manifest_cid", manifest_cid)
        set_field(self, "dataset_cid", dataset_cid)
        set_field(self, "signature_b64", signature_b64)
        set_field(self, "public_key_b64", public_key_b64)
        set_field(self, "record_count", record_count)
        set_field(self, "ledger_seq", ledger_seq)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "upload_id": self.upload_id,
            "lab": self.lab,
            "manifest_cid": self.manifest_cid,
            "dataset_cid": self.dataset_cid,
            "signature_b64": self.signature_b64,
            "public_key_b64": self.public_key_b64,
            "record_count": self.record_count,
            "ledger_seq": self.ledger_seq,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> DatasetAccepted:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "upload_id": data["upload_id"],
            "lab": data["lab"],
            "manifest_cid": data["manifest_cid"],
            "dataset_cid": data["dataset_cid"],
            "signature_b64": data["signature_b64"],
            "public_key_b64": data["public_key_b64"],
            "record_count": data["record_count"],
            "ledger_seq": data["ledger_seq"],
        })


@dataclass(frozen=True, kw_only=True, init=False)
class DftCompleted(EventRecord):
    """The DFT runner finished (or gave up on) a calculation."""

    TYPE: ClassVar[str] = "DftCompleted"
    TOPIC: ClassVar[str] = "dft.completed"
    KEY_FIELD: ClassVar[str | None] = "candidate_id"
    FINGERPRINT: ClassVar[str] = "75e0a3913d4b8647"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "candidate_id",
        "crystal",
        "backend",
        "status",
        "total_energy_eV",
        "formation_energy_per_atom_eV",
        "band_gap_eV",
        "wall_time_s",
        "output_cid",
        "attempts",
        "message",
        "round",
    )

    candidate_id: str
    """Content key of the crystal."""
    crystal: Crystal
    """Structure computed (relaxed if the backend relaxes)."""
    backend: str
    """Backend that ran it."""
    status: DftStatus
    """ok: values are set; failed/timeout: no values; no_label: the replay oracle has no recorded
    label.
    """
    total_energy_eV: float | None = None
    """Total energy of the cell, eV."""
    formation_energy_per_atom_eV: float | None = None
    """Formation energy, eV/atom."""
    band_gap_eV: float | None = None
    """Band gap, eV."""
    wall_time_s: float
    """Wall-clock time spent, seconds."""
    output_cid: str | None = None
    """CID of the raw DFT output archive."""
    attempts: int = 1
    """Number of attempts made."""
    message: str = ""
    """Error or diagnostic text; empty when ok."""
    round: int = 0
    """Campaign round."""

    def __init__(
        self,
        *,
        candidate_id: str,
        crystal: Crystal | Mapping[str, Any],
        backend: str,
        status: DftStatus | str,
        total_energy_eV: float | None = None,
        formation_energy_per_atom_eV: float | None = None,
        band_gap_eV: float | None = None,
        wall_time_s: float,
        output_cid: str | None = None,
        attempts: int = 1,
        message: str = "",
        round: int = 0,
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "candidate_id", candidate_id)
        set_field(self, "crystal", crystal if type(crystal) is Crystal else Crystal.coerce(crystal))
        set_field(self, "backend", backend)
        set_field(self, "status", DftStatus(status))
        set_field(self, "total_energy_eV", None if total_energy_eV is None else total_energy_eV)
        set_field(self, "formation_energy_per_atom_eV",
            None if formation_energy_per_atom_eV is None else formation_energy_per_atom_eV)
        set_field(self, "band_gap_eV", None if band_gap_eV is None else band_gap_eV)
        set_field(self, "wall_time_s", wall_time_s)
        set_field(self, "output_cid", None if output_cid is None else output_cid)
        set_field(self, "attempts", attempts)
        set_field(self, "message", message)
        set_field(self, "round", round)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "candidate_id": self.candidate_id,
            "crystal": self.crystal.to_avro(),
            "backend": self.backend,
            "status": self.status.value,
            "total_energy_eV": self.total_energy_eV,
            "formation_energy_per_atom_eV": self.formation_energy_per_atom_eV,
            "band_gap_eV": self.band_gap_eV,
            "wall_time_s": self.wall_time_s,
            "output_cid": self.output_cid,
            "attempts": self.attempts,
            "message": self.message,
            "round": self.round,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> DftCompleted:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "candidate_id": data["candidate_id"],
            "crystal": Crystal.from_avro(data["crystal"]),
            "backend": data["backend"],
            "status": DftStatus(data["status"]),
            "total_energy_eV": data.get("total_energy_eV"),
            "formation_energy_per_atom_eV": data.get("formation_energy_per_atom_eV"),
            "band_gap_eV": data.get("band_gap_eV"),
            "wall_time_s": data["wall_time_s"],
            "output_cid": data.get("output_cid"),
            "attempts": data.get("attempts", 1),
            "message": data.get("message", ""),
            "round": data.get("round", 0),
        })


@dataclass(frozen=True, kw_only=True, init=False)
class DftRequested(EventRecord):
    """Acquisition chose a candidate for a DFT calculation."""

    TYPE: ClassVar[str] = "DftRequested"
    TOPIC: ClassVar[str] = "dft.requested"
    KEY_FIELD: ClassVar[str | None] = "candidate_id"
    FINGERPRINT: ClassVar[str] = "bd0a68846630c99e"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "candidate_id",
        "crystal",
        "backend",
        "round",
        "acquisition_score",
        "policy",
    )

    candidate_id: str
    """Content key of the crystal."""
    crystal: Crystal
    """Structure to compute."""
    backend: str
    """DFT backend: 'gpaw' (real DFT) or 'replay' (recorded labels)."""
    round: int
    """Campaign round."""
    acquisition_score: float | None = None
    """Score the policy gave the candidate (policy units)."""
    policy: str = ""
    """Acquisition policy that chose it, e.g. 'ucb', 'ei'."""

    def __init__(
        self,
        *,
        candidate_id: str,
        crystal: Crystal | Mapping[str, Any],
        backend: str,
        round: int,
        acquisition_score: float | None = None,
        policy: str = "",
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "candidate_id", candidate_id)
        set_field(self, "crystal", crystal if type(crystal) is Crystal else Crystal.coerce(crystal))
        set_field(self, "backend", backend)
        set_field(self, "round", round)
        set_field(self, "acquisition_score",
            None if acquisition_score is None else acquisition_score)
        set_field(self, "policy", policy)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "candidate_id": self.candidate_id,
            "crystal": self.crystal.to_avro(),
            "backend": self.backend,
            "round": self.round,
            "acquisition_score": self.acquisition_score,
            "policy": self.policy,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> DftRequested:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "candidate_id": data["candidate_id"],
            "crystal": Crystal.from_avro(data["crystal"]),
            "backend": data["backend"],
            "round": data["round"],
            "acquisition_score": data.get("acquisition_score"),
            "policy": data.get("policy", ""),
        })


@dataclass(frozen=True, kw_only=True, init=False)
class GenerationFinished(EventRecord):
    """The generator finished a round's batch; says how many candidates it emitted and why others
    were dropped.
    """

    TYPE: ClassVar[str] = "GenerationFinished"
    TOPIC: ClassVar[str] = "campaigns"
    KEY_FIELD: ClassVar[str | None] = "campaign_id"
    FINGERPRINT: ClassVar[str] = "5c94b9f447ef452a"
    FIELDS: ClassVar[tuple[str, ...]] = ("round", "count", "counts", "wall_time_s")

    round: int
    """Round number, 0-based."""
    count: int
    """CandidateGenerated events emitted for this round."""
    counts: dict[str, int]
    """Validity-filter counts for the batch: generated, too_close, not_charge_balanced,
    bad_density, duplicate, valid, ...
    """
    wall_time_s: float
    """Time spent generating, in seconds."""

    def __init__(
        self,
        *,
        round: int,
        count: int,
        counts: Mapping[str, int],
        wall_time_s: float,
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "round", round)
        set_field(self, "count", count)
        set_field(self, "counts", dict(counts))
        set_field(self, "wall_time_s", wall_time_s)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "round": self.round,
            "count": self.count,
            "counts": dict(self.counts),
            "wall_time_s": self.wall_time_s,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> GenerationFinished:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "round": data["round"],
            "count": data["count"],
            "counts": dict(data["counts"]),
            "wall_time_s": data["wall_time_s"],
        })


@dataclass(frozen=True, kw_only=True, init=False)
class LedgerAppendRequested(EventRecord):
    """A service asks the ledger to append an entry."""

    TYPE: ClassVar[str] = "LedgerAppendRequested"
    TOPIC: ClassVar[str] = "ledger.requests"
    KEY_FIELD: ClassVar[str | None] = "request_id"
    FINGERPRINT: ClassVar[str] = "8da9f031e50db5fe"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "request_id",
        "kind",
        "cid",
        "metadata_json",
        "submitter_public_key_b64",
        "submitter_signature_b64",
    )

    request_id: str
    """Idempotency key: the same request appends at most once."""
    kind: LedgerKind
    """What the entry records."""
    cid: str | None = None
    """CID of the recorded content (dataset, model, checkpoint)."""
    metadata_json: str = "{}"
    """Entry metadata as a JSON object."""
    submitter_public_key_b64: str
    """Submitter's Ed25519 public key, base64."""
    submitter_signature_b64: str
    """Submitter's Ed25519 signature over the entry body, base64."""

    def __init__(
        self,
        *,
        request_id: str,
        kind: LedgerKind | str,
        cid: str | None = None,
        metadata_json: str = "{}",
        submitter_public_key_b64: str,
        submitter_signature_b64: str,
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "request_id", request_id)
        set_field(self, "kind", LedgerKind(kind))
        set_field(self, "cid", None if cid is None else cid)
        set_field(self, "metadata_json", metadata_json)
        set_field(self, "submitter_public_key_b64", submitter_public_key_b64)
        set_field(self, "submitter_signature_b64", submitter_signature_b64)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "request_id": self.request_id,
            "kind": self.kind.value,
            "cid": self.cid,
            "metadata_json": self.metadata_json,
            "submitter_public_key_b64": self.submitter_public_key_b64,
            "submitter_signature_b64": self.submitter_signature_b64,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> LedgerAppendRequested:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "request_id": data["request_id"],
            "kind": LedgerKind(data["kind"]),
            "cid": data.get("cid"),
            "metadata_json": data.get("metadata_json", "{}"),
            "submitter_public_key_b64": data["submitter_public_key_b64"],
            "submitter_signature_b64": data["submitter_signature_b64"],
        })


@dataclass(frozen=True, kw_only=True, init=False)
class LedgerEntry(EventRecord):
    """The ledger appended an entry (hash-chained, signed, a Merkle leaf)."""

    TYPE: ClassVar[str] = "LedgerEntry"
    TOPIC: ClassVar[str] = "ledger.entries"
    KEY_FIELD: ClassVar[str | None] = "seq"
    FINGERPRINT: ClassVar[str] = "3cc6c5695e0e2b73"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "seq",
        "request_id",
        "kind",
        "cid",
        "metadata_json",
        "prev_hash_hex",
        "entry_hash_hex",
        "submitter_public_key_b64",
        "submitter_signature_b64",
        "ledger_signature_b64",
        "tree_size",
        "root_hash_hex",
        "record_b64",
    )

    seq: int
    """Sequence number, from 0, without gaps."""
    request_id: str | None = None
    """Request this entry answers, if any."""
    kind: LedgerKind
    """What the entry records."""
    cid: str | None = None
    """CID of the recorded content."""
    metadata_json: str = "{}"
    """Entry metadata as a JSON object."""
    prev_hash_hex: str
    """SHA-256 of the previous entry, hex (64 zeros for seq 0)."""
    entry_hash_hex: str
    """SHA-256 of this entry's canonical bytes, hex."""
    submitter_public_key_b64: str
    """Submitter's Ed25519 public key, base64."""
    submitter_signature_b64: str
    """Submitter's signature, base64."""
    ledger_signature_b64: str
    """The ledger's own Ed25519 signature over the entry, base64."""
    tree_size: int
    """Merkle tree size after this entry (seq + 1)."""
    root_hash_hex: str
    """RFC 6962 Merkle root after this entry, hex."""
    record_b64: str | None = None
    """The entry's canonical record (body then ledger signature, docs/ledger.md), base64: the exact
    bytes an auditor re-verifies with `materialabs ledger verify --topic`. Null only in events
    written before this field existed.
    """

    def __init__(
        self,
        *,
        seq: int,
        request_id: str | None = None,
        kind: LedgerKind | str,
        cid: str | None = None,
        metadata_json: str = "{}",
        prev_hash_hex: str,
        entry_hash_hex: str,
        submitter_public_key_b64: str,
        submitter_signature_b64: str,
        ledger_signature_b64: str,
        tree_size: int,
        root_hash_hex: str,
        record_b64: str | None = None,
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "seq", seq)
        set_field(self, "request_id", None if request_id is None else request_id)
        set_field(self, "kind", LedgerKind(kind))
        set_field(self, "cid", None if cid is None else cid)
        set_field(self, "metadata_json", metadata_json)
        set_field(self, "prev_hash_hex", prev_hash_hex)
        set_field(self, "entry_hash_hex", entry_hash_hex)
        set_field(self, "submitter_public_key_b64", submitter_public_key_b64)
        set_field(self, "submitter_signature_b64", submitter_signature_b64)
        set_field(self, "ledger_signature_b64", ledger_signature_b64)
        set_field(self, "tree_size", tree_size)
        set_field(self, "root_hash_hex", root_hash_hex)
        set_field(self, "record_b64", None if record_b64 is None else record_b64)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "seq": self.seq,
            "request_id": self.request_id,
            "kind": self.kind.value,
            "cid": self.cid,
            "metadata_json": self.metadata_json,
            "prev_hash_hex": self.prev_hash_hex,
            "entry_hash_hex": self.entry_hash_hex,
            "submitter_public_key_b64": self.submitter_public_key_b64,
            "submitter_signature_b64": self.submitter_signature_b64,
            "ledger_signature_b64": self.ledger_signature_b64,
            "tree_size": self.tree_size,
            "root_hash_hex": self.root_hash_hex,
            "record_b64": self.record_b64,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> LedgerEntry:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "seq": data["seq"],
            "request_id": data.get("request_id"),
            "kind": LedgerKind(data["kind"]),
            "cid": data.get("cid"),
            "metadata_json": data.get("metadata_json", "{}"),
            "prev_hash_hex": data["prev_hash_hex"],
            "entry_hash_hex": data["entry_hash_hex"],
            "submitter_public_key_b64": data["submitter_public_key_b64"],
            "submitter_signature_b64": data["submitter_signature_b64"],
            "ledger_signature_b64": data["ledger_signature_b64"],
            "tree_size": data["tree_size"],
            "root_hash_hex": data["root_hash_hex"],
            "record_b64": data.get("record_b64"),
        })


@dataclass(frozen=True, kw_only=True, init=False)
class MaterialRecord(EventRecord):
    """One labelled crystal from an accepted dataset (or a DFT result), for training."""

    TYPE: ClassVar[str] = "MaterialRecord"
    TOPIC: ClassVar[str] = "materials.records"
    KEY_FIELD: ClassVar[str | None] = "material_id"
    FINGERPRINT: ClassVar[str] = "e500cfb7ea39c15e"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "material_id",
        "source",
        "dataset_cid",
        "crystal",
        "formation_energy_per_atom_eV",
        "band_gap_eV",
        "total_energy_eV",
        "properties",
    )

    material_id: str
    """Stable id of the material within its source (e.g. 'mp-1234' or a content key)."""
    source: str
    """Lab or pipeline the record came from."""
    dataset_cid: str | None = None
    """CID of the dataset holding this record."""
    crystal: Crystal
    """The structure."""
    formation_energy_per_atom_eV: float | None = None
    """Formation energy, eV/atom."""
    band_gap_eV: float | None = None
    """Band gap, eV."""
    total_energy_eV: float | None = None
    """Total energy of the cell, eV."""
    properties: dict[str, float] = field(default_factory=dict)
    """Further properties; each key names its unit, e.g. 'bulk_modulus_GPa'."""

    def __init__(
        self,
        *,
        material_id: str,
        source: str,
        dataset_cid: str | None = None,
        crystal: Crystal | Mapping[str, Any],
        formation_energy_per_atom_eV: float | None = None,
        band_gap_eV: float | None = None,
        total_energy_eV: float | None = None,
        properties: Mapping[str, float] = EMPTY_MAP,
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "material_id", material_id)
        set_field(self, "source", source)
        set_field(self, "dataset_cid", None if dataset_cid is None else dataset_cid)
        set_field(self, "crystal", crystal if type(crystal) is Crystal else Crystal.coerce(crystal))
        set_field(self, "formation_energy_per_atom_eV",
            None if formation_energy_per_atom_eV is None else formation_energy_per_atom_eV)
        set_field(self, "band_gap_eV", None if band_gap_eV is None else band_gap_eV)
        set_field(self, "total_energy_eV", None if total_energy_eV is None else total_energy_eV)
        set_field(self, "properties", dict(properties))

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "material_id": self.material_id,
            "source": self.source,
            "dataset_cid": self.dataset_cid,
            "crystal": self.crystal.to_avro(),
            "formation_energy_per_atom_eV": self.formation_energy_per_atom_eV,
            "band_gap_eV": self.band_gap_eV,
            "total_energy_eV": self.total_energy_eV,
            "properties": dict(self.properties),
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> MaterialRecord:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "material_id": data["material_id"],
            "source": data["source"],
            "dataset_cid": data.get("dataset_cid"),
            "crystal": Crystal.from_avro(data["crystal"]),
            "formation_energy_per_atom_eV": data.get("formation_energy_per_atom_eV"),
            "band_gap_eV": data.get("band_gap_eV"),
            "total_energy_eV": data.get("total_energy_eV"),
            "properties": dict(data.get("properties", {})),
        })


@dataclass(frozen=True, kw_only=True, init=False)
class ModelPublished(EventRecord):
    """The retrainer published a model version, recorded in the ledger."""

    TYPE: ClassVar[str] = "ModelPublished"
    TOPIC: ClassVar[str] = "models.published"
    KEY_FIELD: ClassVar[str | None] = "model_name"
    FINGERPRINT: ClassVar[str] = "1a7f715bd8e4caa6"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "model_cid",
        "model_name",
        "version",
        "ledger_seq",
        "targets",
        "metrics",
        "training_data_cids",
        "parent_model_cid",
    )

    model_cid: str
    """CID of the model weights archive."""
    model_name: str
    """Model family, e.g. 'cgcnn-ensemble'."""
    version: int
    """Version number within the family, from 1."""
    ledger_seq: int
    """Sequence number of the ledger entry that records the model."""
    targets: tuple[str, ...]
    """Properties the model predicts."""
    metrics: dict[str, float]
    """Validation metrics; each key names its unit, e.g. 'mae_formation_energy_eV_per_atom'."""
    training_data_cids: tuple[str, ...]
    """CIDs of the datasets the model was trained on."""
    parent_model_cid: str | None = None
    """Model this one was fine-tuned from."""

    def __init__(
        self,
        *,
        model_cid: str,
        model_name: str,
        version: int,
        ledger_seq: int,
        targets: Iterable[str],
        metrics: Mapping[str, float],
        training_data_cids: Iterable[str],
        parent_model_cid: str | None = None,
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "model_cid", model_cid)
        set_field(self, "model_name", model_name)
        set_field(self, "version", version)
        set_field(self, "ledger_seq", ledger_seq)
        set_field(self, "targets", as_tuple(targets))
        set_field(self, "metrics", dict(metrics))
        set_field(self, "training_data_cids", as_tuple(training_data_cids))
        set_field(self, "parent_model_cid", None if parent_model_cid is None else parent_model_cid)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "model_cid": self.model_cid,
            "model_name": self.model_name,
            "version": self.version,
            "ledger_seq": self.ledger_seq,
            "targets": list(self.targets),
            "metrics": dict(self.metrics),
            "training_data_cids": list(self.training_data_cids),
            "parent_model_cid": self.parent_model_cid,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> ModelPublished:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "model_cid": data["model_cid"],
            "model_name": data["model_name"],
            "version": data["version"],
            "ledger_seq": data["ledger_seq"],
            "targets": tuple(data["targets"]),
            "metrics": dict(data["metrics"]),
            "training_data_cids": tuple(data["training_data_cids"]),
            "parent_model_cid": data.get("parent_model_cid"),
        })


@dataclass(frozen=True, kw_only=True, init=False)
class RetrainFinished(EventRecord):
    """The retrainer's verdict on a round's new DFT data: a new model was published, or why not."""

    TYPE: ClassVar[str] = "RetrainFinished"
    TOPIC: ClassVar[str] = "campaigns"
    KEY_FIELD: ClassVar[str | None] = "campaign_id"
    FINGERPRINT: ClassVar[str] = "4df669d1e4c657f9"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "round",
        "published",
        "model_cid",
        "reason",
        "new_examples",
    )

    round: int
    """Round whose DFT results were used."""
    published: bool
    """True if a new model version was published."""
    model_cid: str | None = None
    """CID of the model to use from now on (the new one, or the current one if not published)."""
    reason: str
    """Why it was (not) published, with the validation figures."""
    new_examples: int = 0
    """DFT results added to the training data."""

    def __init__(
        self,
        *,
        round: int,
        published: bool,
        model_cid: str | None = None,
        reason: str,
        new_examples: int = 0,
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "round", round)
        set_field(self, "published", published)
        set_field(self, "model_cid", None if model_cid is None else model_cid)
        set_field(self, "reason", reason)
        set_field(self, "new_examples", new_examples)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "round": self.round,
            "published": self.published,
            "model_cid": self.model_cid,
            "reason": self.reason,
            "new_examples": self.new_examples,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> RetrainFinished:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "round": data["round"],
            "published": data["published"],
            "model_cid": data.get("model_cid"),
            "reason": data["reason"],
            "new_examples": data.get("new_examples", 0),
        })


@dataclass(frozen=True, kw_only=True, init=False)
class RoundStarted(EventRecord):
    """The acquisition service opened the next active-learning round of a campaign."""

    TYPE: ClassVar[str] = "RoundStarted"
    TOPIC: ClassVar[str] = "campaigns"
    KEY_FIELD: ClassVar[str | None] = "campaign_id"
    FINGERPRINT: ClassVar[str] = "9a5c25369967dc48"
    FIELDS: ClassVar[tuple[str, ...]] = ("round", "model_cid", "parents", "dft_calls_used")

    round: int
    """Round number, 0-based (round 0 starts with CampaignStarted)."""
    model_cid: str | None = None
    """CID of the model the predictor must score this round with; null keeps the current one."""
    parents: tuple[ParentCrystal, ...]
    """New parents for the generator: last round's DFT-confirmed stable candidates."""
    dft_calls_used: int
    """DFT calculations spent so far in the campaign."""

    def __init__(
        self,
        *,
        round: int,
        model_cid: str | None = None,
        parents: Iterable[ParentCrystal | Mapping[str, Any]],
        dft_calls_used: int,
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "round", round)
        set_field(self, "model_cid", None if model_cid is None else model_cid)
        set_field(self, "parents", tuple(ParentCrystal.coerce(i0) for i0 in parents))
        set_field(self, "dft_calls_used", dft_calls_used)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "round": self.round,
            "model_cid": self.model_cid,
            "parents": [i0.to_avro() for i0 in self.parents],
            "dft_calls_used": self.dft_calls_used,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> RoundStarted:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "round": data["round"],
            "model_cid": data.get("model_cid"),
            "parents": tuple([ParentCrystal.from_avro(i0) for i0 in data["parents"]]),
            "dft_calls_used": data["dft_calls_used"],
        })


@dataclass(frozen=True, kw_only=True, init=False)
class UploadRejected(EventRecord):
    """Ingest refused an upload; nothing from it enters the ledger."""

    TYPE: ClassVar[str] = "UploadRejected"
    TOPIC: ClassVar[str] = "uploads.rejected"
    KEY_FIELD: ClassVar[str | None] = "upload_id"
    FINGERPRINT: ClassVar[str] = "11a69749337f1ce0"
    FIELDS: ClassVar[tuple[str, ...]] = ("upload_id", "lab", "manifest_cid", "code", "reason")

    upload_id: str
    """Id of the refused upload."""
    lab: str
    """Name of the submitting lab."""
    manifest_cid: str | None = None
    """Manifest CID when one was given."""
    code: RejectionCode
    """Why the upload was refused (machine-readable)."""
    reason: str
    """Human-readable explanation naming the file, record and field at fault."""

    def __init__(
        self,
        *,
        upload_id: str,
        lab: str,
        manifest_cid: str | None = None,
        code: RejectionCode | str,
        reason: str,
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "upload_id", upload_id)
        set_field(self, "lab", lab)
        set_field(self, "manifest_cid", None if manifest_cid is None else manifest_cid)
        set_field(self, "code", RejectionCode(code))
        set_field(self, "reason", reason)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "upload_id": self.upload_id,
            "lab": self.lab,
            "manifest_cid": self.manifest_cid,
            "code": self.code.value,
            "reason": self.reason,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> UploadRejected:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "upload_id": data["upload_id"],
            "lab": data["lab"],
            "manifest_cid": data.get("manifest_cid"),
            "code": RejectionCode(data["code"]),
            "reason": data["reason"],
        })


@dataclass(frozen=True, kw_only=True, init=False)
class UploadSubmitted(EventRecord):
    """A lab submitted a signed dataset upload (manifest of records) for ingestion."""

    TYPE: ClassVar[str] = "UploadSubmitted"
    TOPIC: ClassVar[str] = "uploads.submitted"
    KEY_FIELD: ClassVar[str | None] = "upload_id"
    FINGERPRINT: ClassVar[str] = "5587f1ec111dcb20"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "upload_id",
        "lab",
        "manifest_cid",
        "record_count",
        "signature_b64",
        "public_key_b64",
    )

    upload_id: str
    """Id of this upload, chosen by the lab's client; replays reuse it."""
    lab: str
    """Name of the submitting lab."""
    manifest_cid: str
    """CIDv1 of the upload manifest in the content store."""
    record_count: int
    """Number of material records listed in the manifest."""
    signature_b64: str
    """Ed25519 signature by the lab's key over the manifest bytes, base64."""
    public_key_b64: str
    """The lab's Ed25519 public key (raw 32 bytes), base64."""

    def __init__(
        self,
        *,
        upload_id: str,
        lab: str,
        manifest_cid: str,
        record_count: int,
        signature_b64: str,
        public_key_b64: str,
        envelope: Envelope | None = None,
        key: str | None = None,
        topic: str | None = None,
    ) -> None:
        set_field(self, "envelope", envelope)
        set_field(self, "key", key)
        set_field(self, "topic", topic)
        set_field(self, "upload_id", upload_id)
        set_field(self, "lab", lab)
        set_field(self, "manifest_cid", manifest_cid)
        set_field(self, "record_count", record_count)
        set_field(self, "signature_b64", signature_b64)
        set_field(self, "public_key_b64", public_key_b64)

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        return {
            **envelope_avro(self, envelope),
            "upload_id": self.upload_id,
            "lab": self.lab,
            "manifest_cid": self.manifest_cid,
            "record_count": self.record_count,
            "signature_b64": self.signature_b64,
            "public_key_b64": self.public_key_b64,
        }

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> UploadSubmitted:
        return build(cls, {
            "envelope": envelope_of(data), "key": key, "topic": topic,
            "upload_id": data["upload_id"],
            "lab": data["lab"],
            "manifest_cid": data["manifest_cid"],
            "record_count": data["record_count"],
            "signature_b64": data["signature_b64"],
            "public_key_b64": data["public_key_b64"],
        })


EVENT_TYPES: dict[str, type[EventRecord]] = {
    "CampaignFinished": CampaignFinished,
    "CampaignStarted": CampaignStarted,
    "CandidateGenerated": CandidateGenerated,
    "CandidatePredicted": CandidatePredicted,
    "CandidatePromoted": CandidatePromoted,
    "DatasetAccepted": DatasetAccepted,
    "DftCompleted": DftCompleted,
    "DftRequested": DftRequested,
    "GenerationFinished": GenerationFinished,
    "LedgerAppendRequested": LedgerAppendRequested,
    "LedgerEntry": LedgerEntry,
    "MaterialRecord": MaterialRecord,
    "ModelPublished": ModelPublished,
    "RetrainFinished": RetrainFinished,
    "RoundStarted": RoundStarted,
    "UploadRejected": UploadRejected,
    "UploadSubmitted": UploadSubmitted,
}

RECORD_TYPES: dict[str, type[AvroRecord]] = {
    "CampaignTarget": CampaignTarget,
    "Crystal": Crystal,
    "ParentCrystal": ParentCrystal,
    "Prediction": Prediction,
    "PropertyValue": PropertyValue,
}

ENUM_TYPES: dict[str, type[StrEnum]] = {
    "CampaignStatus": CampaignStatus,
    "DftStatus": DftStatus,
    "LedgerKind": LedgerKind,
    "PromotionReason": PromotionReason,
    "RejectionCode": RejectionCode,
    "TargetDirection": TargetDirection,
}
