"""A discovery campaign, as a researcher writes it (TOML) and as it travels (CampaignStarted).

A campaign file is checked against one typed schema (``SCHEMA`` below, one entry per field
of :class:`Campaign`) and refused on the first thing that does not fit: an unknown key
(with the nearest known one suggested), a value of the wrong type (``true`` is not a
budget, ``"40"`` is not a number, ``4.0`` is not a count), a value out of range, or fields
that contradict each other. Each refusal is one line naming the file, the key path
(``targets[0].high``, ``policy_params.kappa``) and what was expected, because a campaign
file is hand-written and a typo should cost seconds, not a failed run.

TOML puts every key written after a ``[table]`` header into that table, so a top-level key
written below ``[policy_params]`` or ``[[targets]]`` lands inside it; such a key is refused
with that explanation rather than as a bare unknown key.
"""

from __future__ import annotations

import builtins
import difflib
import json
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from materialabs.records import ELEMENTS
from materialabs.records import PROPERTIES as PROPERTY_SPECS

POLICIES = ("random", "greedy", "uncertainty", "ucb", "ei", "thompson", "pareto")
METHODS = ("saps", "airss", "pool")
BACKENDS = ("replay", "gpaw", "mlip")
DIRECTIONS = ("minimize", "maximize", "window")
PROPERTIES = {"formation_energy_per_atom": "eV/atom", "band_gap": "eV",
              "e_above_hull": "eV/atom"}
# Where the generator's starting structures come from (materialabs.ports.campaign_parents).
PARENTS = {
    "mp": "the known share of the Materials Project entries inside the chemical space",
    "perovskites": "the Castelli cubic perovskites inside the chemical space",
}
# Parameters each policy takes (the acquisition service passes these and no others).
POLICY_PARAMS: dict[str, dict[str, tuple[float, float]]] = {
    "ucb": {"kappa": (0.0, 100.0)},   # standard deviations of optimism
    "ei": {"xi": (0.0, 10.0)},        # eV/atom of improvement margin
}
# Keys campaign files once had, and why they are gone: refused with the reason.
REMOVED = {
    "replay_dataset": "the replay oracle answers with the Materials Project labels, the "
                      "only set on the model's energy scale; delete the line",
}
MAX_FILE_BYTES = 1 << 20  # a campaign file is a few hundred bytes
WEEK_S = 7 * 24 * 3600.0


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
    parents: str = "mp"                    # where the generator's structures come from
    policy: str = "ucb"
    policy_params: dict[str, Any] = field(default_factory=dict)
    dft_backend: str = "replay"
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
        """Payload fields of a CampaignStarted event (envelope excluded).

        ``parents`` and ``wall_time_budget_s`` have no field of their own in the schema and
        travel in ``policy_params_json``; the schema leaves no room for them to collide with
        a policy parameter (``POLICY_PARAMS``).
        """
        return {
            "name": self.name,
            "elements": list(self.elements),
            "targets": [{"property": t.property, "unit": t.unit, "direction": t.direction,
                         "low": t.low, "high": t.high} for t in self.targets],
            "methods": list(self.methods),
            "policy": self.policy,
            "policy_params_json": json.dumps(
                {**self.policy_params, "parents": self.parents,
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
        extra.pop("replay_dataset", None)  # written by campaigns before the key was removed
        return cls(
            name=payload["name"], elements=tuple(payload["elements"]),
            targets=tuple(Target(t["property"], t["direction"], t.get("low"), t.get("high"))
                          for t in payload["targets"]),
            methods=tuple(payload["methods"]), policy=payload["policy"],
            parents=extra.pop("parents", "mp"),
            wall_time_budget_s=float(extra.pop("wall_time_budget_s", 600.0)),
            policy_params=extra, dft_backend=payload["dft_backend"],
            dft_budget=payload["dft_budget"], rounds=payload["rounds"],
            candidates_per_round=payload["candidates_per_round"],
            max_sites=payload["max_sites"], seed=payload["seed"])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_campaign(path: Path) -> Campaign:
    """Read and check a campaign file; every way it can be wrong is a CampaignError."""
    path = Path(path)
    try:
        if path.is_dir():
            raise CampaignError(f"{path}: is a folder; expected a campaign file (TOML)")
        if path.exists() and not path.is_file():
            raise CampaignError(f"{path}: not a regular file; expected a campaign file (TOML)")
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError as error:
        raise CampaignError(f"{path}: no such campaign file") from error
    except OSError as error:
        raise CampaignError(f"{path}: cannot read it ({error.strerror or error})") from error
    if len(raw) > MAX_FILE_BYTES:
        raise CampaignError(f"{path}: larger than {MAX_FILE_BYTES >> 10} KiB; "
                            "expected a campaign file (TOML)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CampaignError(f"{path}: not UTF-8 text (byte {error.start} is "
                            f"{raw[error.start]:#04x}); expected a campaign file (TOML)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CampaignError(f"{path}: not valid TOML ({error})") from error
    return parse_campaign(data, str(path))


def parse_campaign(data: Mapping[str, Any], source: str = "<campaign>") -> Campaign:
    """A Campaign from a parsed TOML document, or a CampaignError naming what is wrong."""
    try:
        values = _check_table(data, "", SCHEMA, _REQUIRED)
        values["policy_params"] = _check_policy_params(values.get("policy", Campaign.policy),
                                                       data.get("policy_params", {}))
        campaign = Campaign(**values)
        _check_together(campaign)
    except _Bad as bad:
        raise CampaignError(f"{source}: field '{bad.path}': {bad.message}") from None
    return campaign


# -- the schema --------------------------------------------------------------------------------

class _Bad(Exception):
    """One refusal inside the schema walk; parse_campaign adds the file name."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(path, message)
        self.path, self.message = path, message


Check = Callable[[Any, str], Any]  # (value as TOML gave it, key path) -> value for Campaign


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _refuse(path: str, expected: str, value: Any) -> _Bad:
    kind = type(value).__name__
    shown = _show(value)
    if isinstance(value, bool | dict | list):
        shown = f"{kind} {shown}"
    return _Bad(path, f"expected {expected}, got {shown}")


def _integer(low: int, high: int) -> Check:
    expected = f"a whole number from {low:,} to {high:,}"

    def check(value: Any, path: str) -> int:
        # bool is an int in Python: `rounds = true` must not read as 1.
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _refuse(path, expected, value)
        return value
    return check


def _number(low: float = -math.inf, high: float = math.inf, *, positive: bool = False
            ) -> Check:
    if positive:
        expected = f"a number above {low:g} and at most {high:g}"
    elif math.isinf(low) and math.isinf(high):
        expected = "a finite number"
    else:
        expected = f"a number from {low:g} to {high:g}"

    def check(value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _refuse(path, expected, value)
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            raise _refuse(path, expected, value) from None
        if not math.isfinite(number) or not low <= number <= high or (positive
                                                                      and number <= low):
            raise _refuse(path, expected, value)
        return number
    return check


def _choice(options: Mapping[str, Any] | tuple[str, ...]) -> Check:
    names = tuple(options)
    expected = "one of " + ", ".join(repr(n) for n in names)

    def check(value: Any, path: str) -> str:
        if isinstance(value, str) and value in names:
            return value
        guess = _nearest(value, names)
        hint = f" (did you mean {guess!r}?)" if guess else ""
        raise _Bad(path, f"expected {expected}, got {_show(value)}{hint}")
    return check


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _name(value: Any, path: str) -> str:
    # The report folder is named after the campaign: no separators, no leading dot.
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise _refuse(path, "1-64 letters, digits, '.', '_' or '-', starting with a letter "
                            "or digit (it names the report folder)", value)
    return value


def _element(value: Any, path: str) -> str:
    if isinstance(value, str) and value in ELEMENTS:
        return value
    hint = ""
    if isinstance(value, str) and value.strip().capitalize() in ELEMENTS:
        hint = f" (did you mean {value.strip().capitalize()!r}? symbols are case-sensitive)"
    raise _Bad(path, f"expected an element symbol such as 'Sr', 'Ti', 'O', got "
                     f"{_show(value)}{hint}")


def _list_of(item: Check, most: int, what: str) -> Check:
    expected = f"a list of 1 to {most} {what}"

    def check(value: Any, path: str) -> tuple:
        if not isinstance(value, list) or not 1 <= len(value) <= most:
            raise _refuse(path, expected, value)
        items = tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))
        for i, v in enumerate(items):
            if isinstance(v, str) and v in items[:i]:
                raise _Bad(f"{path}[{i}]", f"{v!r} is listed twice")
        return items
    return check


def _target(value: Any, path: str) -> Target:
    if not isinstance(value, dict):
        raise _refuse(path, "a table with property and direction ([[targets]])", value)
    target = Target(**_check_table(value, path, TARGET_SCHEMA, {"property", "direction"}))
    spec = PROPERTY_SPECS[target.property]
    for side in ("low", "high"):
        bound = getattr(target, side)
        if bound is not None and not spec.low <= bound <= spec.high:
            raise _Bad(f"{path}.{side}", f"expected a {target.property} from {spec.low:g} to "
                                         f"{spec.high:g} {spec.unit}, got {bound:g}")
    if target.direction == "window":
        for side in ("low", "high"):
            if getattr(target, side) is None:
                raise _Bad(f"{path}.{side}", "missing; a window needs both low and high")
        if target.low > target.high:
            raise _Bad(f"{path}.low", f"expected low <= high for a window, got low "
                                      f"{target.low:g} > high {target.high:g}")
    # A threshold is an upper one when minimising, a lower one when maximising.
    unused = {"minimize": "low", "maximize": "high"}.get(target.direction)
    if unused and getattr(target, unused) is not None:
        used = "high" if unused == "low" else "low"
        raise _Bad(f"{path}.{unused}", f"not used when direction is {target.direction!r} "
                                       f"(a {target.direction} target takes only '{used}', "
                                       "a threshold)")
    return target


def _targets(value: Any, path: str) -> tuple[Target, ...]:
    targets = _list_of(_target, len(PROPERTIES), "target tables ([[targets]])")(value, path)
    for i, target in enumerate(targets):
        if any(t.property == target.property for t in targets[:i]):
            raise _Bad(f"{path}[{i}].property", f"{target.property!r} is targeted twice")
    return targets


TARGET_SCHEMA: dict[str, Check] = {
    "property": _choice(PROPERTIES),
    "direction": _choice(DIRECTIONS),
    "low": _number(),     # bounds per property: records.PROPERTIES, checked in _target
    "high": _number(),
}

SCHEMA: dict[str, Check] = {
    "name": _name,
    "elements": _list_of(_element, len(ELEMENTS), "element symbols"),
    "targets": _targets,
    "methods": _list_of(_choice(METHODS), len(METHODS), "generation methods"),
    "parents": _choice(PARENTS),
    "policy": _choice(POLICIES),
    "policy_params": lambda value, path: value,  # checked against the policy, below
    "dft_backend": _choice(BACKENDS),
    "dft_budget": _integer(1, 100_000),
    "rounds": _integer(1, 1_000),
    # The acquisition service holds and scores a whole round in memory.
    "candidates_per_round": _integer(1, 10_000),
    "max_sites": _integer(1, 200),
    "seed": _integer(0, 2**63 - 1),  # Avro long; numpy refuses negative seeds
    "wall_time_budget_s": _number(0.0, WEEK_S, positive=True),
}
_REQUIRED = {f.name for f in fields(Campaign)
             if f.default is MISSING and f.default_factory is MISSING}


def _check_table(data: Any, path: str, schema: Mapping[str, Check],
                 required: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _refuse(path or "<top level>", "a table", data)
    for key in data:
        if key not in schema:
            raise _unknown(key, path, schema)
    missing = [key for key in schema if key in required and key not in data]
    if missing:
        raise _Bad(_join(path, missing[0]), "missing; it is required")
    return {key: schema[key](value, _join(path, key)) for key, value in data.items()}


def _check_policy_params(policy: str, raw: Any) -> dict[str, float]:
    accepted = POLICY_PARAMS.get(policy, {})
    schema = {name: _number(low, high) for name, (low, high) in accepted.items()}
    if not isinstance(raw, dict):
        raise _refuse("policy_params", "a table such as { kappa = 1.0 }", raw)
    for key in raw:
        if key in schema:
            continue
        owner = next((p for p, names in POLICY_PARAMS.items() if key in names), None)
        if owner is not None:
            takes = ", ".join(accepted) or "no parameters"
            raise _Bad(f"policy_params.{key}", f"a parameter of policy {owner!r}, not of "
                                               f"{policy!r} (which takes {takes})")
        raise _unknown(key, "policy_params", schema)
    return _check_table(raw, "policy_params", schema, set())


def _unknown(key: str, path: str, schema: Mapping[str, Check]) -> _Bad:
    where = _join(path, key)
    if key in REMOVED:
        return _Bad(where, f"no longer a campaign key: {REMOVED[key]}")
    if path and key in SCHEMA:
        table = "[[targets]]" if path.startswith("targets") else f"[{path}]"
        return _Bad(where, f"'{key}' is a top-level key, but TOML puts every key written "
                           f"after a {table} header into that table; move it above the "
                           "first table")
    known = ", ".join(schema) or "nothing (this policy takes no parameters)"
    guess = _nearest(key, tuple(schema))
    hint = f"did you mean {guess!r}? " if guess else ""
    return _Bad(where, f"unknown key; {hint}expected one of {known}")


def _nearest(value: Any, names: tuple[str, ...]) -> str | None:
    if not isinstance(value, str):
        return None
    lowered = {n.lower(): n for n in names}
    if value.strip().lower() in lowered:
        return lowered[value.strip().lower()]
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
    return close[0] if close else None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_together(campaign: Campaign) -> None:
    """Rules between fields, checked on the campaign with its defaults filled in."""
    if "pool" in campaign.methods and campaign.dft_backend != "replay":
        raise _Bad("methods", "'pool' only with dft_backend = \"replay\" (the pool is the "
                              "replay oracle's hidden structures)")
    if campaign.rounds > campaign.dft_budget:
        raise _Bad("rounds", f"expected at most dft_budget ({campaign.dft_budget}) rounds: "
                             f"each round makes at least one DFT call, got {campaign.rounds}")

