"""A service's durable state (``ctx.state``), with a unit of work per record.

Every value a handler reads from ``ctx.state`` is its own: a change it makes, by assignment
or in place (``ctx.state["book"]["pool"].append(...)``), is committed only when the handler
succeeds, and thrown away when it raises. So a retry starts from the committed state and a
dead-lettered record leaves no trace, whatever the handler did before it failed.

How it stays cheap when a service keeps one large value (the acquisition service's
per-campaign book holds the whole candidate pool and is updated by every event):

* committed values are trees of :class:`FrozenDict` / :class:`FrozenList`, which refuse
  changes, and are never handed to a handler;
* reading a key gives a working copy of the top container only; each nested container is
  copied when the handler first reaches it (a shallow, C-speed copy of that one container,
  whose own children stay shared until reached). Touching one pool entry copies the book's
  top level, the pool's table of entries and that entry, not every entry;
* on commit the working containers become the new frozen ones in place (no copy), and the
  untouched subtrees are shared with the previous version.

Committed values are exactly what JSON gives back after a restart (tuples become lists,
keys text, typed event records their Avro fields, other objects ``str(value)``), so a
service behaves the same before and after it reloads its state. State is written to the
bus table once per batch (``write_back``), not per record: re-encoding a large value for
every event would be quadratic in its size.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any, SupportsIndex

from materialabs.bus.port import Table

READ_ONLY = ("committed service state is read-only; change the copy that ctx.state[...] "
             "gives the handler")


class _Tree:
    """The working copies read from one state key in one unit of work."""

    __slots__ = ("modified",)

    def __init__(self) -> None:
        self.modified = False


class _DictNode(dict):  # type: ignore[type-arg]
    __slots__ = ("_tree", "_pending", "_text")
    _tree: Any  # the _Tree of a working copy; None once committed
    _pending: Any  # keys set or opened since the copy was made
    _text: str  # a committed container's JSON, once written (see dump); unset before


class _ListNode(list):  # type: ignore[type-arg]
    __slots__ = ("_tree", "_pending", "_flat", "_text")
    _tree: Any
    _pending: Any  # values inserted or opened since the copy was made
    _flat: bool
    _text: str


def _read_only(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise TypeError(READ_ONLY)


class FrozenDict(_DictNode):
    """A committed JSON object: readable as a dict, never changed."""

    __slots__ = ()
    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return thaw(self)

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return (dict, (thaw(self),))


class FrozenList(_ListNode):
    """A committed JSON array: readable as a list, never changed. ``_flat``: no containers
    among its items."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = extend = insert = pop = remove = clear = sort = reverse = _read_only

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return thaw(self)

    def __copy__(self) -> list[Any]:
        return list(self)

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return (list, (thaw(self),))


_FROZEN = (FrozenDict, FrozenList)


def _open(node: FrozenDict | FrozenList, tree: _Tree) -> _WorkDict | _WorkList:
    """A working copy of one frozen container (its children are opened when reached)."""
    work: Any
    if isinstance(node, FrozenDict):
        work = _WorkDict(node)
        work._pending = set()
    else:
        work = _WorkList(node)
        work._pending = []
        work._flat = node._flat
    work._tree = tree
    return work


class _WorkDict(_DictNode):
    """A handler's copy of a committed object; nested containers are copied when reached.

    Every way of reaching a value goes through ``__getitem__`` (``__iter__`` is overridden
    so that even ``{**d}`` and ``dict(d)`` do), so no committed container escapes.
    """

    __slots__ = ()

    def __getitem__(self, key: Any) -> Any:
        value = dict.__getitem__(self, key)
        kind = type(value)
        if kind is FrozenDict or kind is FrozenList:
            value = _open(value, self._tree)
            dict.__setitem__(self, key, value)
            self._pending.add(key)
        return value

    def __iter__(self) -> Iterator[Any]:
        return dict.__iter__(self)

    def _open_all(self) -> None:
        for key in [k for k, v in dict.items(self) if type(v) in _FROZEN]:
            self[key]

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if dict.__contains__(self, key) else default

    def values(self) -> Any:
        self._open_all()
        return dict.values(self)

    def items(self) -> Any:
        self._open_all()
        return dict.items(self)

    def copy(self) -> dict[Any, Any]:
        return dict(self)

    def __copy__(self) -> dict[Any, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return thaw(self)

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return (dict, (thaw(self),))

    def __or__(self, other: Any) -> dict[Any, Any]:
        merged = dict(self)
        merged.update(other)
        return merged

    def __ror__(self, other: Any) -> dict[Any, Any]:
        merged = dict(other)
        merged.update(self)
        return merged

    def __ior__(self, other: Any) -> _WorkDict:  # type: ignore[override,misc]
        self.update(other)
        return self

    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, key, value)
        self._pending.add(key)
        self._tree.modified = True

    def __delitem__(self, key: Any) -> None:
        dict.__delitem__(self, key)
        self._pending.discard(key)
        self._tree.modified = True

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            return self[key]
        self[key] = default
        return default

    def pop(self, key: Any, *default: Any) -> Any:
        if dict.__contains__(self, key):
            value = self[key]
            del self[key]
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def popitem(self) -> tuple[Any, Any]:
        if not self:
            raise KeyError("popitem(): dictionary is empty")
        key = next(reversed(self))
        return key, self.pop(key)

    def update(self, other: Any = (), /, **more: Any) -> None:  # type: ignore[override]
        for key, value in dict(other, **more).items():
            self[key] = value

    def clear(self) -> None:
        dict.clear(self)
        self._pending.clear()
        self._tree.modified = True

    @classmethod
    def fromkeys(cls, keys: Iterable[Any], value: Any = None) -> dict[Any, Any]:  # type: ignore[override]
        return dict.fromkeys(keys, value)


class _WorkList(_ListNode):
    """A handler's copy of a committed array; nested containers are copied when reached."""

    __slots__ = ()

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        value = list.__getitem__(self, index)
        kind = type(value)
        if kind is FrozenDict or kind is FrozenList:
            value = _open(value, self._tree)
            list.__setitem__(self, index, value)
            self._pending.append(value)
        return value

    def __iter__(self) -> Iterator[Any]:
        if self._flat:  # no frozen children left: nothing to copy
            return list.__iter__(self)
        return self._iter_opening()

    def _iter_opening(self) -> Iterator[Any]:
        index = 0
        while index < len(self):
            yield self[index]
            index += 1
        self._flat = True

    def __reversed__(self) -> Iterator[Any]:
        for index in range(len(self) - 1, -1, -1):
            yield self[index]

    def _open_all(self) -> None:
        if not self._flat:
            for _ in self._iter_opening():
                pass

    def _changed(self, added: Iterable[Any] = ()) -> None:
        self._pending.extend(added)
        self._tree.modified = True

    def copy(self) -> list[Any]:
        return list(self)

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return thaw(self)

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return (list, (thaw(self),))

    def __add__(self, other: Any) -> list[Any]:  # type: ignore[override]
        return [*self, *other]

    def __radd__(self, other: Any) -> list[Any]:
        return [*other, *self]

    def __mul__(self, count: SupportsIndex) -> list[Any]:
        return list(self) * count

    __rmul__ = __mul__

    def __iadd__(self, other: Iterable[Any]) -> _WorkList:  # type: ignore[override,misc]
        self.extend(other)
        return self

    def __imul__(self, count: SupportsIndex) -> _WorkList:  # type: ignore[override,misc]
        self._open_all()  # repeated items stay one object each, as in a plain list
        list.__imul__(self, count)
        self._changed()
        return self

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            value = list(value)
            list.__setitem__(self, index, value)
            self._changed(value)
        else:
            list.__setitem__(self, index, value)
            self._changed((value,))

    def __delitem__(self, index: Any) -> None:
        list.__delitem__(self, index)
        self._changed()

    def append(self, value: Any) -> None:
        list.append(self, value)
        self._changed((value,))

    def extend(self, values: Iterable[Any]) -> None:
        values = list(values)
        list.extend(self, values)
        self._changed(values)

    def insert(self, index: SupportsIndex, value: Any) -> None:
        list.insert(self, index, value)
        self._changed((value,))

    def pop(self, index: SupportsIndex = -1) -> Any:
        value = self[index]
        list.__delitem__(self, index)
        self._changed()
        return value

    def remove(self, value: Any) -> None:
        list.remove(self, value)
        self._changed()

    def clear(self) -> None:
        list.clear(self)
        self._changed()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        list.sort(self, *args, **kwargs)
        self._changed()

    def reverse(self) -> None:
        list.reverse(self)
        self._changed()


# -- committed form --------------------------------------------------------------------------

_PLAIN_SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_PLAIN_SCALARS)
_TEXT = frozenset((str,))


def freeze(value: Any) -> Any:
    """The committed (read-only) form of a state value: what JSON would give back."""
    kind = type(value)
    if kind in _SCALAR_TYPES or kind is FrozenDict or kind is FrozenList:
        return value
    if kind is _WorkDict:
        return _commit_dict(value)
    if kind is _WorkList:
        return _commit_list(value)
    if kind is dict:
        if _SCALAR_TYPES.issuperset(map(type, value.values())) and \
                _TEXT.issuperset(map(type, value)):
            return FrozenDict(value)  # the common leaf: text keys, plain values
        return FrozenDict({k if type(k) is str else _json_key(k):
                           v if type(v) in _SCALAR_TYPES else freeze(v)
                           for k, v in value.items()})
    if kind is list or kind is tuple:
        if _SCALAR_TYPES.issuperset(map(type, value)):  # numbers, text: copied in C
            frozen = FrozenList(value)
            frozen._flat = True
            return frozen
        return _frozen_list([v if type(v) in _SCALAR_TYPES else freeze(v) for v in value])
    to_avro = getattr(value, "to_avro", None)
    if to_avro is not None:  # a typed event record: its Avro fields
        return freeze(to_avro())
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str.__str__(value)  # a str enum's value, as json.dumps writes it
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return FrozenDict({_json_key(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return _frozen_list([freeze(v) for v in value])
    return str(value)  # datetimes and the like, as json.dumps(default=str) wrote them


def _json_key(key: Any) -> str:
    """The text JSON makes of an object key."""
    if type(key) is str:
        return key
    if isinstance(key, str):
        return str.__str__(key)
    if isinstance(key, bool) or key is None:
        return json.dumps(key)
    if isinstance(key, int):
        return str(int(key))
    if isinstance(key, float):
        return json.dumps(float(key))
    raise TypeError(f"state key {key!r}: JSON object keys are text (or numbers), "
                    f"not {type(key).__name__}")


def _frozen_list(items: list[Any]) -> FrozenList:
    frozen = FrozenList(items)
    frozen._flat = not any(type(v) in _FROZEN for v in items)
    return frozen


def _commit_dict(node: _WorkDict) -> FrozenDict:
    for key in list(node._pending):
        if dict.__contains__(node, key):
            value = dict.__getitem__(node, key)
            if type(value) in _SCALAR_TYPES and type(key) is str:
                continue
            value = freeze(value)
            if type(key) is str:
                dict.__setitem__(node, key, value)
            else:
                dict.__delitem__(node, key)
                dict.__setitem__(node, _json_key(key), value)
    node._tree = node._pending = None
    node.__class__ = FrozenDict  # type: ignore[assignment]
    return node  # type: ignore[return-value]


def _commit_list(node: _WorkList) -> FrozenList:
    pending = node._pending
    if all(type(v) in _PLAIN_SCALARS or type(v) is _WorkDict or type(v) is _WorkList
           for v in pending):
        # Only strings, numbers and working copies were added: commit those in place.
        flat = node._flat
        for value in pending:
            if type(value) is _WorkDict:
                _commit_dict(value)
                flat = False
            elif type(value) is _WorkList:
                _commit_list(value)
                flat = False
    else:
        flat = True
        for index, value in enumerate(list.__iter__(node)):
            frozen = freeze(value)
            if frozen is not value:
                list.__setitem__(node, index, frozen)
            flat = flat and type(frozen) not in _FROZEN
    node._tree = node._pending = None
    node.__class__ = FrozenList  # type: ignore[assignment]
    node._flat = flat
    return node  # type: ignore[return-value]


def thaw(value: Any) -> Any:
    """A plain, mutable deep copy of a (frozen or working) state value."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in dict.items(value)}
    if isinstance(value, list):
        return [thaw(v) for v in list.__iter__(value)]
    return value


def _from_json(value: Any) -> Any:
    if type(value) is dict:
        return FrozenDict({k: _from_json(v) for k, v in value.items()})
    if type(value) is list:
        return _frozen_list([_from_json(v) for v in value])
    return value


def load(raw: bytes) -> Any:
    return _from_json(json.loads(raw))


def dump(value: Any) -> bytes:
    """``json.dumps(value, default=str)`` of a committed value, byte for byte.

    Keys keep their insertion order (no sort_keys), so a reloaded object iterates as the
    committed one did. A committed container never changes, so the text of each nested
    one that holds containers is kept with it, and the next write-back of the key reuses
    it for every subtree the batch did not touch: a book of 1,000 pool entries, written
    after each batch of 60 predictions, encodes 60 entries, not 1,000 (the whole text cost
    0.19 of the acquisition's 0.9 CPU-ms per candidate). The price is memory: about the
    state's JSON again per level of nesting.
    """
    if type(value) is FrozenDict or type(value) is FrozenList:
        return _encode(value, keep=False).encode()
    return _ENCODER.encode(value).encode()


_ENCODER = json.JSONEncoder(default=str)  # json.dumps(value, default=str), made once
_encode_text = json.encoder.encode_basestring_ascii  # what json.dumps writes for a str
_INFINITY = float("inf")


def _scalar(value: Any) -> str:
    """What json.dumps writes for a committed scalar (a str, int, float, bool or None)."""
    kind = type(value)
    if kind is str:
        return _encode_text(value)
    if kind is float:
        if value != value:
            return "NaN"
        if value == _INFINITY or value == -_INFINITY:
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _ENCODER.encode(value)


def _encode(node: FrozenDict | FrozenList, keep: bool = True) -> str:
    """The JSON text of a committed container, kept on it (``keep``) where it nests others."""
    text: str | None = getattr(node, "_text", None)
    if text is not None:
        return text
    if type(node) is FrozenList:
        if node._flat:
            return _ENCODER.encode(node)  # leaves are written by C, never kept
        text = "[" + ", ".join(
            _encode(v) if type(v) in _FROZEN else _scalar(v)
            for v in list.__iter__(node)) + "]"
    else:
        if not any(type(v) in _FROZEN for v in dict.values(node)):
            return _ENCODER.encode(node)
        text = "{" + ", ".join(
            _encode_text(k) + ": " + (_encode(v) if type(v) in _FROZEN else _scalar(v))
            for k, v in dict.items(node)) + "}"
    if keep:
        node._text = text
    return text


# -- the state -------------------------------------------------------------------------------

_ABSENT: Any = object()  # a deleted or missing key


class JsonState(MutableMapping[str, Any]):
    """JSON values over a bus table, read and changed through a unit of work per record.

    The runtime calls :meth:`commit` after a handler succeeded and :meth:`rollback` after
    it raised; :meth:`write_back` puts the committed changes into the table at batch end.
    """

    def __init__(self, table: Table) -> None:
        self._table = table
        self._committed: dict[str, Any] = {}  # frozen values (or _ABSENT) read or committed
        self._dirty: set[str] = set()         # committed, not yet written back
        self._work: dict[str, Any] = {}       # this unit's values (or _ABSENT), by key
        self._trees: dict[str, _Tree] = {}
        self._assigned: set[str] = set()

    # -- reading and writing, inside a unit of work ------------------------------------
    def _committed_value(self, key: str) -> Any:
        if key not in self._committed:
            raw = self._table.get(key)
            self._committed[key] = _ABSENT if raw is None else load(raw)
        return self._committed[key]

    def __getitem__(self, key: str) -> Any:
        if key in self._work:
            value = self._work[key]
        else:
            value = self._committed_value(key)
            if type(value) in _FROZEN:
                tree = self._trees[key] = _Tree()
                value = _open(value, tree)
            self._work[key] = value
        if value is _ABSENT:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"state keys are text, got {type(key).__name__} {key!r}")
        self._work[key] = value
        self._assigned.add(key)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._work[key] = _ABSENT
        self._assigned.add(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if key in self._work:
            return self._work[key] is not _ABSENT
        if key in self._committed:
            return self._committed[key] is not _ABSENT
        return key in self._table

    def __iter__(self) -> Iterator[str]:
        keys = {k for k, _ in self._table.items()}
        for layer in (self._committed, self._work):
            for key, value in layer.items():
                if value is _ABSENT:
                    keys.discard(key)
                else:
                    keys.add(key)
        return iter(sorted(keys))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def touch(self, key: str) -> None:
        """Kept for handlers written before in-place changes were tracked: a no-op now."""
        self[key] = self[key]

    # -- the unit of work ------------------------------------------------------------------
    def commit(self) -> None:
        """Make this unit's changes the committed state (durable at the next write-back).

        Raises (TypeError: a value JSON cannot hold) before anything is committed; the
        unit then stays open for :meth:`rollback`.
        """
        changed = []
        for key, value in self._work.items():
            tree = self._trees.get(key)
            if key in self._assigned or (tree is not None and tree.modified):
                changed.append((key, _ABSENT if value is _ABSENT else freeze(value)))
        for key, value in changed:
            self._committed[key] = value
            self._dirty.add(key)
        self._end_unit()

    def rollback(self) -> None:
        """Forget this unit's changes: the next read sees the committed state again."""
        self._end_unit()

    def _end_unit(self) -> None:
        self._work = {}
        self._trees = {}
        self._assigned = set()

    # -- the table -------------------------------------------------------------------------
    def write_back(self) -> None:
        """Put every key committed since the last write-back into the table."""
        for key in sorted(self._dirty):
            value = self._committed[key]
            self._table.put(key, None if value is _ABSENT else dump(value))
        self._dirty.clear()

    def refresh(self) -> None:
        """Forget what was read from the table (after it caught up with other writers)."""
        self._committed = {k: v for k, v in self._committed.items() if k in self._dirty}
