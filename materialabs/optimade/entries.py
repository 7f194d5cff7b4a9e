"""Catalog rows as OPTIMADE structure entries (JSON:API resources)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from materialabs.optimade.fields import LISTS, PREFIX, SCALARS

ENTRY_TYPE = "structures"

# Standard properties of the structures entry type we do not hold: named in response_fields,
# they come back as null (the spec's answer for a known property without a value).
UNSERVED_STANDARD = frozenset({
    "immutable_id", "chemical_formula_hill", "assemblies", "space_group_symmetry_operations_xyz",
    "space_group_symbol_hall", "space_group_symbol_hermann_mauguin",
    "space_group_symbol_hermann_mauguin_extended", "space_group_it_number",
})

ALL_FIELDS = tuple(name for name in [*SCALARS, *LISTS] if name not in ("id", "type"))


def timestamp(ms: int | None) -> str | None:
    """RFC 3339 to the second (what a filter on last_modified compares)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def attributes(row: dict[str, Any]) -> dict[str, Any]:
    """Every attribute we serve for one catalog row."""
    species_sites = json.loads(row["species_at_sites"]) if row.get("species_at_sites") else None
    lattice = json.loads(row["lattice"]) if row.get("lattice") else None
    frac = json.loads(row["frac_coords"]) if row.get("frac_coords") else None
    elements = [e for e in (row.get("chemical_system") or "").split("-") if e]
    if species_sites:
        counts = Counter(species_sites)
        ratios: list[float] | None = [counts[e] / len(species_sites) for e in elements]
    else:
        ratios = None
    cartesian = None
    if lattice is not None and frac is not None:
        cartesian = [[sum(f[i] * lattice[i][k] for i in range(3)) for k in range(3)]
                     for f in frac]
    values: dict[str, Any] = {
        "last_modified": timestamp(row.get("occurred_at_ms")),
        "elements": elements,
        "nelements": row.get("nelements"),
        "elements_ratios": ratios,
        "chemical_formula_descriptive": row.get("chemical_formula_descriptive"),
        "chemical_formula_reduced": row.get("chemical_formula_reduced"),
        "chemical_formula_anonymous": row.get("chemical_formula_anonymous"),
        "dimension_types": [1, 1, 1],
        "nperiodic_dimensions": 3,
        "lattice_vectors": lattice,
        "cartesian_site_positions": cartesian,
        "nsites": row.get("nsites"),
        "species_at_sites": species_sites,
        "species": [{"name": e, "chemical_symbols": [e], "concentration": [1.0]}
                    for e in elements] if species_sites else None,
        "structure_features": [],
    }
    for name, scalar in SCALARS.items():
        if name.startswith(PREFIX):
            values[name] = row.get(scalar.column) if scalar.column else scalar.constant
    return values


def entry(row: dict[str, Any], fields: tuple[str, ...] | None, base_url: str) -> dict[str, Any]:
    """The JSON:API resource of a row; ``fields`` limits the attributes (None: all)."""
    every = attributes(row)
    wanted = ALL_FIELDS if fields is None else fields
    chosen = {}
    for name in wanted:
        if name in ("id", "type"):
            continue
        chosen[name] = every.get(name)  # a standard property we do not hold: null
    return {"id": row["record_id"], "type": ENTRY_TYPE, "attributes": chosen,
            "links": {"self": f"{base_url}/structures/{row['record_id']}"}}
