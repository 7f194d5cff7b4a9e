"""OPTIMADE filters (v1.2 grammar) translated into parameterised SQL over the catalog.

The reference grammar parses (``optimade.filterparser.LarkParser``, the optimade package's
own parser, so we accept exactly the language the validator speaks); this module walks the
tree and writes a WHERE clause whose values are all ``?`` parameters — nothing from the
filter text is ever put into the SQL.

Semantics, as the spec gives them:

* A comparison with an unknown (NULL) value is false, and NOT of it true: every comparison
  is written ``col IS NOT NULL AND col OP ?`` so SQL's third truth value never appears and
  NOT is plain negation.
* ``elements`` (and ``species_at_sites``, whose species are the elements) HAS / HAS ALL /
  HAS ANY / HAS ONLY test the catalog's delimited system tag ("-O-Sr-Ti-") on the table of
  distinct tags, and find the rows through the index on it; HAS ONLY is an IN list of the
  allowed subsets' tags. LENGTH is nelements (nsites for the site lists).
* Unknown ``_materialabs_`` fields are an error (400): they are ours, so a typo. Another
  provider's prefixed field is unknown to us: a comparison with it is false, IS UNKNOWN
  true, and the response carries a warning. An unprefixed name that is not an OPTIMADE
  property is an error (400).
* What the grammar allows and we do not implement (property-to-property comparisons,
  HAS with an operator other than =, set zips, comparisons inside the coordinate lists)
  answers 501 Not Implemented.

Bounds (a filter comes from anyone on the internet): at most MAX_FILTER_LENGTH characters,
MAX_DEPTH nested parentheses and MAX_TERMS comparisons, so neither the parser's recursion nor
SQLite's expression depth is ever reached.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from materialabs.catalog import MAX_SUBSET_ELEMENTS, chemical_system_tag, system_sql
from materialabs.optimade.fields import LISTS, PREFIX, SCALARS

MAX_FILTER_LENGTH = 10_000
MAX_DEPTH = 50
MAX_TERMS = 200
MAX_LIST_VALUES = 120
_INT_LIMIT = 2**63 - 1

_OPERATORS = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_FLIPPED = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_SITE_LISTS = {"species_at_sites": "nsites", "cartesian_site_positions": "nsites"}
_KNOWN_COLUMN = {"elements": "chemical_system", "elements_ratios": "chemical_system",
                 "species": "chemical_system", "species_at_sites": "species_at_sites",
                 "lattice_vectors": "lattice", "cartesian_site_positions": "frac_coords"}
# The other providers' prefixes the spec reserves (they are not errors, only unknown to us).
_PROVIDER_PREFIX = re.compile(r"^_[a-z0-9]+_")


class FilterError(ValueError):
    """A filter we refuse: ``status`` 400 (bad request) or 501 (not implemented)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    @property
    def title(self) -> str:
        return "Bad Request" if self.status == 400 else "Not Implemented"


@dataclass
class Translation:
    where: str
    parameters: list[Any] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def _parser() -> Any:
    from optimade.filterparser import LarkParser

    return LarkParser(version=(1, 2, 0))


def translate(text: str) -> Translation:
    """The SQL condition of an OPTIMADE filter; FilterError for what we refuse."""
    if not isinstance(text, str):
        raise FilterError(400, f"filter: expected a string, got {type(text).__name__}")
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(400, f"filter: {len(text):,} characters; at most "
                               f"{MAX_FILTER_LENGTH:,}")
    if not text.strip():
        return Translation("")
    _check_depth(text)
    tree = _parse(text)
    walker = _Walker()
    where = walker.filter(tree)
    return Translation(where, walker.parameters, sorted(set(walker.warnings)))


def _check_depth(text: str) -> None:
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    if deepest > MAX_DEPTH:
        raise FilterError(400, f"filter: parentheses nested {deepest} deep; at most {MAX_DEPTH}")


def _parse(text: str) -> Any:
    from optimade.exceptions import BadRequest

    try:
        return _parser().parse(text)
    except BadRequest as error:
        detail = str(getattr(error, "detail", error))
        where = re.search(r"at line (\d+) col (\d+)", detail)
        reason = re.search(r"Lark traceback: \s*(.*?)(?:, at line|\n)", detail, re.S)
        position = f" at line {where.group(1)} column {where.group(2)}" if where else ""
        why = f": {reason.group(1).strip()}" if reason else ""
        if "end-of-input" in detail:
            position, why = f" at column {len(text) + 1}", ": the filter ends too early"
        raise FilterError(400, f"filter: cannot parse{position}{why}") from None
    except RecursionError:
        raise FilterError(400, "filter: too deeply nested to parse") from None


def _token_text(node: Any) -> str:
    return str(node.value if hasattr(node, "value") else node)


class _Walker:
    def __init__(self) -> None:
        self.parameters: list[Any] = []
        self.warnings: list[str] = []
        self.terms = 0

    def param(self, value: Any) -> str:
        self.parameters.append(value)
        return "?"

    # -- structure -----------------------------------------------------------------------
    def filter(self, tree: Any) -> str:
        parts = [self.expression(child) for child in tree.children]
        return " AND ".join(f"({p})" for p in parts)

    def expression(self, node: Any) -> str:
        clauses = [self.clause(child) for child in node.children]
        return clauses[0] if len(clauses) == 1 else " OR ".join(f"({c})" for c in clauses)

    def clause(self, node: Any) -> str:
        phrases = [self.phrase(child) for child in node.children]
        return phrases[0] if len(phrases) == 1 else " AND ".join(f"({p})" for p in phrases)

    def phrase(self, node: Any) -> str:
        children = [c for c in node.children if c is not None]
        negate = bool(children) and getattr(children[0], "type", None) == "NOT"
        inner = children[-1]
        text = self.comparison(inner) if inner.data == "comparison" else self.expression(inner)
        return f"NOT ({text})" if negate else text

    def comparison(self, node: Any) -> str:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise FilterError(400, f"filter: more than {MAX_TERMS} comparisons")
        child = node.children[0]
        if child.data == "constant_first_comparison":
            return self.constant_first(child)
        return self.property_first(child)

    # -- pieces --------------------------------------------------------------------------
    def property_name(self, node: Any) -> str:
        parts = [_token_text(c) for c in node.children]
        if len(parts) > 1:
            raise FilterError(501, f"filter: nested property {'.'.join(parts)} is not "
                                   "supported")
        return parts[0]

    def value(self, node: Any) -> tuple[str, Any]:
        """(kind, python value) of a value / constant / non_string_value node."""
        inner = node.children[0]
        kind = inner.data
        if kind == "string":
            return "string", _unescape(_token_text(inner.children[0]))
        if kind in ("number", "signed_int"):
            return "number", _number(_token_text(inner.children[0]))
        if kind == "bool":
            raise FilterError(501, "filter: boolean values are not supported (no boolean "
                                   "property is served)")
        if kind == "property":
            raise FilterError(501, "filter: comparing a property with another property "
                                   f"({self.property_name(inner)}) is not supported")
        if kind == "not_implemented_string":
            raise FilterError(501, "filter: a string constant before the operator is not "
                                   "supported; write the property first")
        if kind in ("value", "constant", "non_string_value"):
            return self.value(inner)
        raise FilterError(501, f"filter: {kind} values are not supported")

    def constant_first(self, node: Any) -> str:
        constant, operator, rhs = node.children
        kind, value = self.value(constant)
        inner = rhs.children[0]
        if rhs.data == "not_implemented_string" or inner.data != "property":
            raise FilterError(501, "filter: comparing two constants is not supported")
        return self.compare(self.property_name(inner), _FLIPPED[_token_text(operator)], kind,
                            value)

    def property_first(self, node: Any) -> str:
        name = self.property_name(node.children[0])
        rhs = node.children[1]
        items = [c for c in rhs.children if c is not None]
        tokens = [_token_text(c) for c in items if not hasattr(c, "data")]
        if rhs.data == "value_op_rhs":
            kind, value = self.value(items[1])
            return self.compare(name, _token_text(items[0]), kind, value)
        if rhs.data == "known_op_rhs":
            return self.known(name, tokens[-1] == "KNOWN")
        if rhs.data == "fuzzy_string_op_rhs":
            kind, value = self.value(items[-1])
            return self.fuzzy(name, tokens[0], kind, value)
        if rhs.data == "set_op_rhs":
            return self.set_op(name, items)
        if rhs.data == "length_op_rhs":
            operator = tokens[1] if len(tokens) > 1 and tokens[1] in _OPERATORS else "="
            number = _number(_token_text(items[-1].children[0]))
            return self.length(name, operator, number)
        raise FilterError(501, f"filter: {rhs.data.replace('_', ' ')} (e.g. set zips with "
                               "':') is not supported")

    # -- semantics -----------------------------------------------------------------------
    def scalar(self, name: str) -> Any:
        """The Scalar of a name, None for a known list property; unknown names checked."""
        if name in SCALARS:
            return SCALARS[name]
        if name in LISTS:
            return None
        if name.startswith(PREFIX):
            raise FilterError(400, f"filter: unknown property {name}; our fields are "
                                   + ", ".join(n for n in SCALARS if n.startswith(PREFIX)))
        if _PROVIDER_PREFIX.match(name):
            self.warnings.append(f"the property {name} is not served by this provider; "
                                 "comparisons with it are false")
            return "unknown"
        raise FilterError(400, f"filter: unknown property {name!r}")

    def compare(self, name: str, operator: str, kind: str, value: Any) -> str:
        scalar = self.scalar(name)
        if scalar == "unknown":
            return "0"
        if scalar is None:
            raise FilterError(501 if name in LISTS else 400,
                              f"filter: {name} is a list; compare it with HAS, HAS ALL, "
                              "HAS ANY, HAS ONLY or LENGTH")
        sql_operator = _OPERATORS[operator]
        value = self.typed(name, scalar.type, kind, value)
        if scalar.column is None:
            return "1" if _python_compare(scalar.constant, sql_operator, value) else "0"
        column = scalar.column
        if scalar.type == "timestamp":  # served to the second, so compared to the second
            return (f"{column} IS NOT NULL AND ({column} / 1000) {sql_operator} "
                    f"{self.param(value // 1000)}")
        return f"{column} IS NOT NULL AND {column} {sql_operator} {self.param(value)}"

    def typed(self, name: str, type_: str, kind: str, value: Any) -> Any:
        if type_ == "string":
            if kind != "string":
                raise FilterError(400, f"filter: {name} is a string; compare it with a "
                                       f"quoted string, not {value!r}")
            return value
        if type_ == "timestamp":
            if kind != "string":
                raise FilterError(400, f"filter: {name} is a timestamp; compare it with a "
                                       "quoted ISO 8601 time, e.g. \"2026-01-01T00:00:00Z\"")
            return _timestamp_ms(name, value)
        if kind != "number":
            raise FilterError(400, f"filter: {name} is a number ({type_}); compare it with a "
                                   f"number, not the string {value!r}")
        return value

    def known(self, name: str, known: bool) -> str:
        scalar = self.scalar(name)
        if scalar == "unknown":
            return "0" if known else "1"
        if scalar is None:
            if name in ("structure_features", "dimension_types"):
                return "1" if known else "0"
            column = _KNOWN_COLUMN[name]
        elif scalar.column is None:
            return "1" if known else "0"
        else:
            column = scalar.column
        return f"{column} IS {'NOT ' if known else ''}NULL"

    def fuzzy(self, name: str, operator: str, kind: str, value: Any) -> str:
        scalar = self.scalar(name)
        if scalar == "unknown":
            return "0"
        if scalar is None or scalar.type != "string" or kind != "string":
            raise FilterError(400, f"filter: {operator} needs a string property and a quoted "
                                   f"string; {name} is "
                                   + ("a list" if scalar is None else f"a {scalar.type}"))
        if scalar.column is None:
            constant = str(scalar.constant)
            hit = {"CONTAINS": value in constant, "STARTS": constant.startswith(value),
                   "ENDS": constant.endswith(value)}[operator]
            return "1" if hit else "0"
        column = scalar.column
        if value == "":
            return f"{column} IS NOT NULL"
        known = f"{column} IS NOT NULL AND "  # two-valued: an unknown value is no match
        if operator == "CONTAINS":
            return f"{known}instr({column}, {self.param(value)}) > 0"
        if operator == "STARTS":
            return f"{known}substr({column}, 1, {len(value)}) = {self.param(value)}"
        return f"{known}substr({column}, {-len(value)}) = {self.param(value)}"

    def set_op(self, name: str, items: list[Any]) -> str:
        scalar = self.scalar(name)
        if scalar == "unknown":
            return "0"
        if scalar is not None:
            raise FilterError(400, f"filter: HAS needs a list property; {name} is a "
                                   f"{scalar.type}")
        word = _token_text(items[1]) if len(items) > 1 and not hasattr(items[1], "data") \
            else "HAS"
        if word in ("ALL", "ANY", "ONLY"):
            values = self.value_list(name, items[-1])
        else:
            operator = _token_text(items[1]) if len(items) > 2 else "="
            if operator != "=":
                raise FilterError(501, f"filter: HAS {operator} (an operator inside HAS) is "
                                       "not supported")
            values = [self.list_item(name, *self.value(items[-1]))]
            word = "ALL"
        return self.membership(name, word, values)

    def value_list(self, name: str, node: Any) -> list[Any]:
        values: list[Any] = []
        for child in node.children:
            if child is None:
                continue
            if not hasattr(child, "data"):
                if _token_text(child) != "=":
                    raise FilterError(501, f"filter: an operator ({_token_text(child)}) "
                                           "inside a HAS list is not supported")
                continue
            values.append(self.list_item(name, *self.value(child)))
        if len(values) > MAX_LIST_VALUES:
            raise FilterError(400, f"filter: {len(values)} values in one list; at most "
                                   f"{MAX_LIST_VALUES}")
        return values

    def list_item(self, name: str, kind: str, value: Any) -> Any:
        item_type = LISTS[name][0]
        if item_type == "string":
            if kind != "string":
                raise FilterError(400, f"filter: {name} holds strings; got {value!r}")
            return value
        if item_type in ("integer", "float"):
            if kind != "number":
                raise FilterError(400, f"filter: {name} holds numbers; got {value!r}")
            return value
        raise FilterError(501, f"filter: HAS on {name} (a list of {item_type}s) is not "
                               "supported; IS KNOWN and LENGTH are")

    def membership(self, name: str, word: str, values: list[Any]) -> str:
        if name == "structure_features":
            return "1" if (word == "ONLY" or (word == "ALL" and not values)) else "0"
        if name == "dimension_types":
            ones = [v == 1 for v in values]
            hit = {"ALL": all(ones), "ANY": any(ones), "ONLY": all(ones)}[word]
            return "1" if hit else "0"
        if name not in ("elements", "species_at_sites"):
            raise FilterError(501, f"filter: HAS on {name} is not supported; IS KNOWN and "
                                   "LENGTH are")
        guard = "species_at_sites IS NOT NULL AND " if name == "species_at_sites" else ""
        unique = sorted(set(values))
        if word == "ONLY":
            return guard + self.only(unique)
        tests = [f"instr(tag, {self.param(f'-{v}-')}) > 0" for v in unique]
        if not tests:
            return "1" if word == "ALL" else "0"
        joined = (" AND " if word == "ALL" else " OR ").join(tests)
        return guard + system_sql(joined)

    def only(self, allowed: list[str]) -> str:
        if not allowed:
            return "0"
        if len(allowed) <= MAX_SUBSET_ELEMENTS:
            tags = [chemical_system_tag(combo) for size in range(1, len(allowed) + 1)
                    for combo in itertools.combinations(allowed, size)]
            marks = ", ".join(self.param(tag) for tag in tags)
            return f"chemical_system IN ({marks})"
        expression = "tag"
        for element in allowed:
            expression = f"replace({expression}, {self.param(f'-{element}-')}, '-')"
        return system_sql(f"{expression} = '-'")

    def length(self, name: str, operator: str, number: Any) -> str:
        scalar = self.scalar(name)
        if scalar == "unknown":
            return "0"
        if scalar is not None:
            raise FilterError(400, f"filter: LENGTH needs a list property; {name} is a "
                                   f"{scalar.type}")
        sql_operator = _OPERATORS[operator]
        if name in ("lattice_vectors", "dimension_types", "structure_features"):
            size = 0 if name == "structure_features" else 3
            hit = _python_compare(size, sql_operator, number)
            if name == "lattice_vectors":
                return "lattice IS NOT NULL" if hit else "0"
            return "1" if hit else "0"
        column = _SITE_LISTS.get(name, "nelements")
        known = _KNOWN_COLUMN.get(name, column)
        return (f"{known} IS NOT NULL AND {column} IS NOT NULL AND "
                f"{column} {sql_operator} {self.param(number)}")


def _python_compare(left: Any, operator: str, right: Any) -> bool:
    try:
        return {"=": left == right, "!=": left != right, "<": left < right,
                "<=": left <= right, ">": left > right, ">=": left >= right}[operator]
    except TypeError:
        return False


def _unescape(token: str) -> str:
    body = token[1:-1]
    return re.sub(r'\\(["\\])', r"\1", body)


def _number(text: str) -> int | float:
    try:
        if re.fullmatch(r"[+-]?\d+", text):
            value: int | float = int(text)
            if abs(value) <= _INT_LIMIT:
                return value
            value = float(text)
        else:
            value = float(text)
    except (ValueError, OverflowError):
        raise FilterError(400, f"filter: {text[:40]!r} is not a number we can compare") \
            from None
    if not math.isfinite(value):
        raise FilterError(400, f"filter: {text[:40]!r} is beyond the range of a float")
    return value


def _timestamp_ms(name: str, text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(400, f"filter: {name}: {text[:60]!r} is not an ISO 8601 time, e.g. "
                               "\"2026-01-01T00:00:00Z\"") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
