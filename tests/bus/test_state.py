"""ctx.state's unit of work: handlers change private copies; commit keeps, rollback forgets.

Model-based: random edits are applied both through the state and to a plain deep copy;
after a commit the state equals the copy (and what JSON gives back after a restart),
after a rollback it equals what was committed before, and no committed version is ever
changed by a later unit of work.
"""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from materialabs.bus.table import MemoryTable
from materialabs.events.types import Crystal
from materialabs.runtime.state import READ_ONLY, JsonState, freeze, thaw

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3),
                    st.floats(allow_nan=False, allow_infinity=False))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=3), inner, max_size=4)),
    max_leaves=20)


def containers(value: Any, path: tuple = ()) -> list[tuple]:
    """Paths of every dict and list inside ``value``."""
    found = [path] if isinstance(value, dict | list) else []
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, child in items:
        found += containers(child, (*path, key))
    return found


def at(value: Any, path: tuple) -> Any:
    for key in path:
        value = value[key]
    return value


def edit(data: st.DataObject, model: Any, work: Any) -> None:
    """One random edit, applied to the plain model and through the state's copy."""
    path = data.draw(st.sampled_from(containers(model)))
    target, through = at(model, path), at(work, path)
    if isinstance(target, dict):
        keys = sorted(target)
        action = data.draw(st.sampled_from(["set", "setdefault", "update", "pop", "merge"]
                                           if keys else ["set", "update"]))
        key = data.draw(st.sampled_from(keys) if keys and action in ("pop", "merge")
                        else st.text(max_size=3))
        value = data.draw(values)
        if action == "set":
            target[key] = copy.deepcopy(value)
            through[key] = value
        elif action == "setdefault":
            target.setdefault(key, copy.deepcopy(value))
            through.setdefault(key, value)
        elif action == "update":
            target.update({key: copy.deepcopy(value)})
            through.update({key: value})
        elif action == "pop":
            assert thaw(through.pop(key)) == target.pop(key)
        else:  # a shallow copy of the object, changed, put in its place
            merged, copied = {**through, key: value}, {**target, key: copy.deepcopy(value)}
            if not path:
                work.clear()
                work.update(merged)
                target.clear()
                target.update(copied)
            else:
                at(work, path[:-1])[path[-1]] = merged
                at(model, path[:-1])[path[-1]] = copied
    else:
        action = data.draw(st.sampled_from(["append", "insert", "extend", "pop", "set",
                                            "sort"] if target else ["append", "extend"]))
        value = data.draw(values)
        if action == "append":
            target.append(copy.deepcopy(value))
            through.append(value)
        elif action == "insert":
            index = data.draw(st.integers(0, len(target)))
            target.insert(index, copy.deepcopy(value))
            through.insert(index, value)
        elif action == "extend":
            target.extend(copy.deepcopy([value, value]))
            through.extend([value, value])
        elif action == "pop":
            index = data.draw(st.integers(0, len(target) - 1))
            assert thaw(through.pop(index)) == target.pop(index)
        elif action == "set":
            index = data.draw(st.integers(0, len(target) - 1))
            target[index] = copy.deepcopy(value)
            through[index] = value
        else:
            target.sort(key=json.dumps)
            through.sort(key=json.dumps)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=3), values, max_size=4), st.data())
def test_commit_keeps_the_edits_rollback_forgets_them(initial: dict, data: st.DataObject) -> None:
    table = MemoryTable()
    state = JsonState(table)
    state["key"] = initial
    state.commit()
    committed = state._committed["key"]
    before = thaw(committed)
    model = copy.deepcopy(initial)
    work = state["key"]
    for _ in range(data.draw(st.integers(1, 6))):
        edit(data, model, work)
        assert thaw(work) == model
    assert thaw(committed) == before, "an edit reached the committed version"
    if data.draw(st.booleans()):
        state.commit()
        assert state["key"] == model
        state.rollback()
        state.write_back()
        assert json.loads(table.get("key") or b"") == model
        assert JsonState(table)["key"] == model  # what a restarted service reads
    else:
        state.rollback()
        assert state["key"] == before
        state.rollback()
    assert thaw(committed) == before


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=3), values, max_size=4), st.data())
def test_each_write_back_is_json_dumps_of_the_state_byte_for_byte(initial: dict,
                                                                  data: st.DataObject) -> None:
    """The text kept on committed containers (reused for untouched subtrees) never goes
    stale: after every unit of work the table holds exactly what json.dumps writes."""
    table = MemoryTable()
    state = JsonState(table)
    state["key"] = initial
    state.commit()
    state.write_back()
    model = copy.deepcopy(initial)
    for _ in range(data.draw(st.integers(1, 4))):
        work = state["key"]
        for _ in range(data.draw(st.integers(1, 4))):
            edit(data, model, work)
        if data.draw(st.booleans()):
            state.commit()
        else:  # a failed unit: the text written next is still the last committed one
            state.rollback()
            model = json.loads(table.get("key") or b"")
        state.write_back()
        assert table.get("key") == json.dumps(model, default=str).encode()
        # What was committed shares no containers (edits may have put one list in two
        # places); the model's next unit must not either.
        model = json.loads(json.dumps(model))


def test_a_write_back_reuses_untouched_subtrees_and_escapes_like_json() -> None:
    table = MemoryTable()
    state = JsonState(table)
    pool = {f"c{i}": {"crystal": {"species": ["Na", "Cl"], "x": [0.1 * i, float("nan")]},
                      "note": "Å \u2028 \"q\"", "n": {"deep": [[i, None, True]]},
                      "hull": float("-inf"), "e": float("nan") if i % 2 else -0.0,
                      "big": 10 ** 30, "ok": False, "none": None}
            for i in range(30)}
    state["book"] = {"pool": pool, "round": {"predicted": []}}
    state.commit()
    state.write_back()
    first = state._committed["book"]["pool"]["c3"]
    state["book"]["pool"]["c30"] = {"crystal": {"species": ["K"], "x": [float("inf")]}}
    state["book"]["round"]["predicted"].append("c30")
    state.commit()
    state.write_back()
    assert state._committed["book"]["pool"]["c3"] is first  # shared, its text kept
    assert isinstance(getattr(first, "_text", None), str)
    expected = copy.deepcopy(pool)
    expected["c30"] = {"crystal": {"species": ["K"], "x": [float("inf")]}}
    assert table.get("book") == json.dumps(
        {"pool": expected, "round": {"predicted": ["c30"]}}, default=str).encode()


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.one_of(scalars, st.datetimes()), lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.tuples(inner, inner),
    st.dictionaries(st.one_of(st.text(max_size=3), st.integers(), st.booleans()), inner,
                    max_size=3)), max_leaves=12))
def test_the_committed_form_is_what_json_gives_back(value: Any) -> None:
    assert freeze(value) == json.loads(json.dumps(value, default=str))


def test_a_committed_value_refuses_changes_and_copies_to_plain_containers() -> None:
    state = JsonState(MemoryTable())
    state["book"] = {"pool": [{"id": 1}]}
    state.commit()
    committed = state._committed["book"]
    with pytest.raises(TypeError, match="read-only"):
        committed["pool"].append(2)
    with pytest.raises(TypeError, match=READ_ONLY[:20]):
        committed["pool"][0]["id"] = 2
    for plain in (copy.deepcopy(committed), pickle.loads(pickle.dumps(committed)),
                  copy.deepcopy(state["book"])):
        assert type(plain) is dict and type(plain["pool"]) is list
        plain["pool"].append(2)
    assert state._committed["book"] == {"pool": [{"id": 1}]}


def test_typed_records_are_committed_as_their_avro_fields() -> None:
    state = JsonState(MemoryTable())
    crystal = Crystal(lattice_angstrom=(1.0,) * 9, species=("Na",), frac_coords=(0.0,) * 3)
    state["c"] = {"crystal": crystal, "ids": ("a", "b")}
    state.commit()
    assert state["c"] == {"crystal": crystal.to_avro(), "ids": ["a", "b"]}


def test_a_value_json_cannot_hold_fails_the_commit_and_leaves_the_state_alone() -> None:
    state = JsonState(MemoryTable())
    state["a"] = 1
    state.commit()
    state["a"] = 2
    state["b"] = {(1, 2): "tuple keys are not JSON"}
    with pytest.raises(TypeError, match="JSON object keys"):
        state.commit()
    state.rollback()
    assert state["a"] == 1 and "b" not in state
