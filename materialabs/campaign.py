"""A discovery campaign, as a researcher writes it (TOML) and as it travels (CampaignStarted).

Validation names the file and the field that is wrong and what was expected, because a
campaign file is hand-written and a typo should cost seconds, not a failed run.
"""

from __future__ import annotations

import builtins
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

POLICIES = ("random", "greedy", "uncertainty", "ucb", "ei", "thompson", "pareto")
METHODS = ("saps", "airss", "pool")
BACKENDS = ("replay", "gpaw")
DIRECTIONS = ("minimize", "maximize", "window")
PROPERTIES = {"formation_energy_per_atom": "eV/atom", "band_gap": "eV",
              "e_above_hull": "eV/atom"}


class CampaignError(ValueError):
    """A campaign file is wrong; the message names the file and the field."""


@dataclass(frozen=True)
class Target:
    property: str
    direction: str
    low: float | None = None
    high: float | None = None

    @builtins.property  # the field `property` shadows the builtin inside this class
    def unit(self) -> str:
        return PROPERTIES[self.property]


@dataclass(frozen=True)
class Campaign:
    name: str
    elements: tuple[str, ...]
    targets: tuple[Target, ...]
    methods: tuple[str, ...] = ("saps",)
    parents: str = "mp"                    # dataset whose structures seed SAPS (mp | perovskites)
    policy: str = "ucb"
    policy_params: dict[str, Any] = field(default_factory=dict)
    dft_backend: str = "replay"
    replay_dataset: str = "mp"             # labels the replay oracle reveals (model's scale)
    dft_budget: int = 40
    rounds: int = 4
    candidates_per_round: int = 200
    max_sites: int = 20
    seed: int = 0
    wall_time_budget_s: float = 600.0

    @property
    def batch_size(self) -> int:
        return max(1, self.dft_budget // self.rounds)

    def to_event_fields(self) -> dict[str, Any]:
        """Payload fields of a CampaignStarted event (envelope excluded)."""
        return {
            "name": self.name,
            "elements": list(self.elements),
            "targets": [{"property": t.property, "unit": t.unit, "direction": t.direction,
                         "low": t.low, "high": t.high} for t in self.targets],
            "methods": list(self.methods),
            "policy": self.policy,
            "policy_params_json": json.dumps(
                {**self.policy_params, "parents": self.parents,
                 "replay_dataset": self.replay_dataset,
                 "wall_time_budget_s": self.wall_time_budget_s}, sort_keys=True),
            "dft_backend": self.dft_backend,
            "dft_budget": self.dft_budget,
            "rounds": self.rounds,
            "candidates_per_round": self.candidates_per_round,
            "max_sites": self.max_sites,
            "seed": self.seed,
        }

    @classmethod
    def from_event_fields(cls, payload: dict[str, Any]) -> Campaign:
        extra = json.loads(payload.get("policy_params_json") or "{}")
        return cls(
            name=payload["name"], elements=tuple(payload["elements"]),
            targets=tuple(Target(t["property"], t["direction"], t.get("low"), t.get("high"))
                          for t in payload["targets"]),
            methods=tuple(payload["methods"]), policy=payload["policy"],
            parents=extra.pop("parents", "mp"),
            replay_dataset=extra.pop("replay_dataset", "mp"),
            wall_time_budget_s=float(extra.pop("wall_time_budget_s", 600.0)),
            policy_params=extra, dft_backend=payload["dft_backend"],
            dft_budget=payload["dft_budget"], rounds=payload["rounds"],
            candidates_per_round=payload["candidates_per_round"],
            max_sites=payload["max_sites"], seed=payload["seed"])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_campaign(path: Path) -> Campaign:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as error:
        raise CampaignError(f"{path}: no such campaign file") from error
    except tomllib.TOMLDecodeError as error:
        raise CampaignError(f"{path}: not valid TOML ({error})") from error
    return parse_campaign(data, str(path))


def parse_campaign(data: dict[str, Any], source: str = "<campaign>") -> Campaign:
    def fail(field_name: str, expected: str, got: Any) -> CampaignError:
        return CampaignError(f"{source}: field '{field_name}': expected {expected}, got {got!r}")

    known = set(Campaign.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        return_error = fail(sorted(unknown)[0], f"one of {', '.join(sorted(known))}",
                            sorted(unknown)[0])
        raise return_error
    for required in ("name", "elements", "targets"):
        if required not in data:
            raise fail(required, "a value (it is required)", None)
    elements = tuple(data["elements"])
    _check_elements(elements, fail)
    targets = tuple(_parse_target(i, t, fail) for i, t in enumerate(data["targets"]))
    if not targets:
        raise fail("targets", "at least one target", data["targets"])
    values = {**data, "elements": elements, "targets": targets,
              "methods": tuple(data.get("methods", ("saps",)))}
    campaign = Campaign(**values)
    _check_choices(campaign, fail)
    return campaign


def _check_elements(elements: tuple[str, ...], fail) -> None:
    from pymatgen.core.periodic_table import Element

    if not elements:
        raise fail("elements", "a non-empty list of element symbols", list(elements))
    for symbol in elements:
        if not isinstance(symbol, str) or not Element.is_valid_symbol(symbol):
            raise fail("elements", "element symbols such as 'Sr', 'Ti', 'O'", symbol)


def _parse_target(index: int, raw: Any, fail) -> Target:
    where = f"targets[{index}]"
    if not isinstance(raw, dict):
        raise fail(where, "a table with property and direction", raw)
    if raw.get("property") not in PROPERTIES:
        raise fail(f"{where}.property", f"one of {', '.join(PROPERTIES)}", raw.get("property"))
    if raw.get("direction") not in DIRECTIONS:
        raise fail(f"{where}.direction", f"one of {', '.join(DIRECTIONS)}", raw.get("direction"))
    low, high = raw.get("low"), raw.get("high")
    if raw["direction"] == "window" and (low is None or high is None or low > high):
        raise fail(f"{where}.low/high", "low <= high for a window", (low, high))
    return Target(raw["property"], raw["direction"], low, high)


def _check_choices(campaign: Campaign, fail) -> None:
    if campaign.policy not in POLICIES:
        raise fail("policy", f"one of {', '.join(POLICIES)}", campaign.policy)
    for method in campaign.methods:
        if method not in METHODS:
            raise fail("methods", f"a list drawn from {', '.join(METHODS)}", method)
    if campaign.dft_backend not in BACKENDS:
        raise fail("dft_backend", f"one of {', '.join(BACKENDS)}", campaign.dft_backend)
    if "pool" in campaign.methods and campaign.dft_backend != "replay":
        raise fail("methods", "'pool' only with dft_backend = \"replay\" (the pool is the "
                   "replay oracle's hidden structures)", list(campaign.methods))
    for name in ("dft_budget", "rounds", "candidates_per_round", "max_sites"):
        value = getattr(campaign, name)
        if not isinstance(value, int) or value < 1:
            raise fail(name, "a positive integer", value)
    if campaign.rounds > campaign.dft_budget:
        raise fail("rounds", f"at most dft_budget ({campaign.dft_budget})", campaign.rounds)
