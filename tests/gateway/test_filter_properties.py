"""Property tests of the OPTIMADE filter translator: for random rows and random filters, the
rows the SQL selects are exactly those a plain-Python evaluation of the same filter keeps."""

from __future__ import annotations

import json
import operator
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from materialabs.catalog import Catalog, make_row
from materialabs.optimade.filter import FilterError, translate

ELEMENTS = ["O", "Ti", "Sr", "Ba", "Li", "Na", "Cl", "Fe"]
NUMBERS = {"nelements": "nelements", "nsites": "nsites",
           "_materialabs_band_gap": "band_gap_eV",
           "_materialabs_formation_energy_per_atom": "formation_energy_per_atom_eV",
           "_materialabs_spacegroup_number": "spacegroup_number"}
STRINGS = {"chemical_formula_reduced": "chemical_formula_reduced",
           "_materialabs_crystal_system": "crystal_system",
           "_materialabs_source_kind": "kind", "_materialabs_lab": "lab"}
OPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
       ">": operator.gt, ">=": operator.ge}


@st.composite
def rows(draw):
    elements = draw(st.lists(st.sampled_from(ELEMENTS), min_size=1, max_size=4, unique=True))
    counts = draw(st.lists(st.integers(1, 4), min_size=len(elements), max_size=len(elements)))
    species = [e for e, n in zip(elements, counts, strict=True) for _ in range(n)]
    formula = "".join(f"{e}{n if n > 1 else ''}" for e, n in sorted(zip(elements, counts,
                                                                          strict=True)))
    maybe = st.none() | st.floats(-5, 5, allow_nan=False).map(lambda x: round(x, 2))
    return make_row(
        draw(st.sampled_from(["upload", "prediction", "dft"])), species,
        record_id=None, nsites=len(species), chemical_formula_reduced=formula,
        species_at_sites=json.dumps(species), band_gap_eV=draw(maybe),
        formation_energy_per_atom_eV=draw(maybe),
        spacegroup_number=draw(st.none() | st.sampled_from([1, 14, 62, 194, 221, 225])),
        lab=draw(st.none() | st.sampled_from(["lab-a", "lab-b"])),
        source=draw(st.text("abc", min_size=1, max_size=3)),
        occurred_at_ms=1, content_cid=draw(st.uuids()).hex)


def number_value(field):
    if field in ("nelements", "nsites", "_materialabs_spacegroup_number"):
        return st.integers(-1, 230)
    return st.floats(-5, 5, allow_nan=False).map(lambda x: round(x, 1))


atoms = st.one_of(
    st.sampled_from(list(NUMBERS)).flatmap(
        lambda f: st.tuples(st.just("cmp"), st.just(f), st.sampled_from(list(OPS)),
                            number_value(f))),
    st.tuples(st.just("cmp"), st.sampled_from(list(STRINGS)), st.sampled_from(["=", "!="]),
              st.sampled_from(["O2Ti", "cubic", "hexagonal", "dft", "lab-a", "x"])),
    st.tuples(st.just("fuzzy"), st.sampled_from(["chemical_formula_reduced",
                                                 "_materialabs_lab"]),
              st.sampled_from(["CONTAINS", "STARTS WITH", "ENDS WITH"]),
              st.sampled_from(["O", "Ti", "a", "2", "", "Sr"])),
    st.tuples(st.just("known"), st.sampled_from([*NUMBERS, *STRINGS]), st.booleans()),
    st.tuples(st.just("has"), st.sampled_from(["elements", "species_at_sites"]),
              st.sampled_from(["", "ALL", "ANY", "ONLY"]),
              st.lists(st.sampled_from(ELEMENTS), min_size=1, max_size=4)),
    st.tuples(st.just("length"), st.sampled_from(["elements", "species_at_sites"]),
              st.sampled_from(list(OPS)), st.integers(0, 12)),
)

filters = st.recursive(
    atoms,
    lambda inner: st.one_of(st.tuples(st.just("not"), inner),
                            st.tuples(st.sampled_from(["AND", "OR"]), inner, inner)),
    max_leaves=8)


def render(node) -> str:
    kind = node[0]
    if kind == "not":
        return f"NOT ({render(node[1])})"
    if kind in ("AND", "OR"):
        return f"({render(node[1])}) {kind} ({render(node[2])})"
    if kind == "cmp":
        _, field, op, value = node
        return f"{field} {op} {json.dumps(value) if isinstance(value, str) else value}"
    if kind == "fuzzy":
        return f"{node[1]} {node[2]} {json.dumps(node[3])}"
    if kind == "known":
        return f"{node[1]} IS {'KNOWN' if node[2] else 'UNKNOWN'}"
    if kind == "has":
        values = ", ".join(json.dumps(v) for v in (node[3] if node[2] else node[3][:1]))
        return f"{node[1]} HAS {node[2]} {values}".replace("HAS  ", "HAS ")
    return f"{node[1]} LENGTH {node[2]} {node[3]}"


def column(field):
    return NUMBERS.get(field) or STRINGS.get(field)


def evaluate(node, row) -> bool:
    kind = node[0]
    if kind == "not":
        return not evaluate(node[1], row)
    if kind == "AND":
        return evaluate(node[1], row) and evaluate(node[2], row)
    if kind == "OR":
        return evaluate(node[1], row) or evaluate(node[2], row)
    elements = set(json.loads(row["species_at_sites"]))
    if kind == "cmp":
        value = row[column(node[1])]
        return value is not None and OPS[node[2]](value, node[3])
    if kind == "fuzzy":
        value = row[column(node[1])]
        if value is None:
            return False
        test = {"CONTAINS": str.__contains__, "STARTS WITH": str.startswith,
                "ENDS WITH": str.endswith}[node[2]]
        return test(value, node[3])
    if kind == "known":
        return (row[column(node[1])] is not None) == node[2]
    if kind == "has":
        values = set(node[3] if node[2] else node[3][:1])
        return {"": values <= elements, "ALL": values <= elements,
                "ANY": bool(values & elements), "ONLY": elements <= values}[node[2]]
    size = len(elements) if node[1] == "elements" else len(json.loads(row["species_at_sites"]))
    return OPS[node[2]](size, node[3])


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(rows(), min_size=1, max_size=25), st.lists(filters, min_size=1, max_size=5))
def test_sql_selects_what_the_filter_means(workdir, table, trees):
    from uuid import uuid4

    catalog = Catalog(workdir / uuid4().hex)
    catalog.upsert(table)
    stored = catalog.select()
    for tree in trees:
        text = render(tree)
        try:
            translation = translate(text)
        except FilterError as error:  # only the bounds may refuse a generated filter
            raise AssertionError(f"{text}: {error.detail}") from None
        got = {r["record_id"] for r in catalog.select(translation.where,
                                                      translation.parameters)}
        want = {r["record_id"] for r in stored if evaluate(tree, r)}
        assert got == want, (text, translation.where, translation.parameters)
        assert catalog.count(translation.where, translation.parameters) == len(want)
    catalog.close()


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_any_text_is_translated_or_refused_with_400_or_501(text):
    try:
        translate(text)
    except FilterError as error:
        assert error.status in (400, 501) and error.detail
