"""The structure properties we serve over OPTIMADE, and how each maps onto catalog columns.

Standard properties are named as the spec names them; ours carry the ``_materialabs_``
prefix. ``SCALARS`` are single values a filter compares (column, OPTIMADE type, unit,
description); ``LISTS`` are list properties with their own filter semantics in
:mod:`materialabs.optimade.filter`.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "_materialabs_"


@dataclass(frozen=True)
class Scalar:
    column: str | None          # catalog column; None for a constant
    type: str                   # OPTIMADE type: string, integer, float, timestamp
    description: str
    unit: str | None = None
    constant: object = None     # the value every entry has, when column is None


SCALARS: dict[str, Scalar] = {
    "id": Scalar("record_id", "string", "The entry's stable id (an upload, a prediction or a "
                                        "DFT result of one crystal)."),
    "type": Scalar(None, "string", "The entry type, always 'structures'.",
                   constant="structures"),
    "last_modified": Scalar("occurred_at_ms", "timestamp",
                            "When the observation behind the entry was made (UTC)."),
    "nelements": Scalar("nelements", "integer", "Number of distinct elements."),
    "nsites": Scalar("nsites", "integer", "Number of sites in the cell."),
    "nperiodic_dimensions": Scalar(None, "integer", "Always 3: bulk crystals.", constant=3),
    "chemical_formula_reduced": Scalar("chemical_formula_reduced", "string",
                                       "Reduced formula, elements in alphabetical order."),
    "chemical_formula_descriptive": Scalar("chemical_formula_descriptive", "string",
                                           "Formula as the sites list the elements."),
    "chemical_formula_anonymous": Scalar("chemical_formula_anonymous", "string",
                                         "Anonymous formula (A, B, ... by decreasing count)."),
    f"{PREFIX}formation_energy_per_atom": Scalar(
        "formation_energy_per_atom_eV", "float", "Formation energy per atom relative to the "
        "elements, on the Materials Project scale (a measurement, a GNN ensemble mean or a "
        "DFT result, see _materialabs_source_kind).", "eV/atom"),
    f"{PREFIX}formation_energy_sigma": Scalar(
        "formation_energy_sigma_eV", "float", "Standard deviation of the GNN ensemble's "
        "formation energy (predictions only).", "eV/atom"),
    f"{PREFIX}band_gap": Scalar("band_gap_eV", "float", "Electronic band gap.", "eV"),
    f"{PREFIX}band_gap_sigma": Scalar("band_gap_sigma_eV", "float", "Standard deviation of "
                                      "the GNN ensemble's band gap (predictions only).", "eV"),
    f"{PREFIX}e_above_hull": Scalar("e_above_hull_eV", "float", "Energy above the convex hull "
                                    "of the known Materials Project phases (<= 0: on or below "
                                    "the hull).", "eV/atom"),
    f"{PREFIX}source_kind": Scalar("kind", "string", "What the entry records: 'upload' (a "
                                   "lab's signed upload), 'prediction' or 'dft'."),
    f"{PREFIX}lab": Scalar("lab", "string", "The lab that uploaded the record (uploads)."),
    f"{PREFIX}ledger_sequence": Scalar("ledger_seq", "integer", "Sequence number of the signed "
                                       "ledger entry recording the content behind the entry "
                                       "(a dataset or a model); its inclusion proof is at "
                                       "/api/v1/ledger/entries/{sequence}."),
    f"{PREFIX}cid": Scalar("content_cid", "string", "Content id (IPFS CIDv1) of the dataset, "
                           "model or DFT output behind the entry."),
    f"{PREFIX}spacegroup_number": Scalar("spacegroup_number", "integer", "International "
                                         "space-group number (spglib, symprec 0.1 Å)."),
    f"{PREFIX}crystal_system": Scalar("crystal_system", "string", "Crystal system of the space "
                                      "group (triclinic ... cubic)."),
    f"{PREFIX}campaign_id": Scalar("campaign_id", "string", "Discovery campaign the entry "
                                   "belongs to (predictions and DFT results)."),
    f"{PREFIX}mp_id": Scalar("mp_id", "string", "Materials Project id, where the entry is a "
                             "known Materials Project material."),
    f"{PREFIX}candidate_id": Scalar("candidate_id", "string", "Content key of the crystal "
                                    "(the same crystal's entries share it)."),
    f"{PREFIX}round": Scalar("round", "integer", "Active-learning round within the campaign."),
    f"{PREFIX}status": Scalar("status", "string", "DFT status: ok, failed, timeout, no_label "
                              "(DFT results)."),
    f"{PREFIX}promoted": Scalar("promoted", "string", "Why the campaign promoted this "
                                "candidate (dft_confirmed, predicted_confidently), if it did."),
}

# List properties: OPTIMADE type of their items, description, unit.
LISTS: dict[str, tuple[str, str, str | None]] = {
    "elements": ("string", "Element symbols present, alphabetical.", None),
    "elements_ratios": ("float", "Fraction of the sites of each element, in the order of "
                                 "elements.", None),
    "species_at_sites": ("string", "Species name of each site.", None),
    "species": ("dictionary", "One species per element (no disorder, no vacancies).", None),
    "lattice_vectors": ("list", "The three cell vectors.", "Å"),
    "cartesian_site_positions": ("list", "Cartesian position of each site.", "Å"),
    "dimension_types": ("integer", "Periodicity of each cell vector, always [1, 1, 1].", None),
    "structure_features": ("string", "Always []: no disorder, no assemblies, no partial "
                                     "occupancy.", None),
}

SORTABLE = frozenset(name for name, scalar in SCALARS.items() if scalar.column is not None)
