"""The OPTIMADE v1.2 API over the catalog, as a FastAPI router mounted at ``/optimade``.

Endpoints (under ``/optimade``, ``/optimade/v1``, ``/optimade/v1.2`` and ``/optimade/v1.2.0``,
as the spec's versioned base URLs): ``versions`` (unversioned only), ``info``,
``info/structures``, ``structures``, ``structures/{id}``, ``links``. A major version other
than 1 answers 553 Version Not Supported.

Query parameters are read as strings and checked here, so a bad one gets the spec's error
document (400 with ``errors``), never FastAPI's 422. ``page_limit`` above MAX_PAGE_LIMIT is
capped, with a warning. Filters go through :mod:`materialabs.optimade.filter` and run on
:meth:`materialabs.catalog.Catalog.select` — the engine ``materialabs query`` uses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from materialabs.catalog import Catalog, CatalogError
from materialabs.optimade.entries import ALL_FIELDS, ENTRY_TYPE, UNSERVED_STANDARD, entry
from materialabs.optimade.fields import LISTS, PREFIX, SCALARS, SORTABLE
from materialabs.optimade.filter import _PROVIDER_PREFIX, FilterError, translate

API_VERSION = "1.2.0"
DEFAULT_PAGE_LIMIT = 20
MAX_PAGE_LIMIT = 500
MAX_OFFSET = 10**12
SCAN_ROWS = 50_000  # rows a page may walk rather than use an index and sort
MEDIA_TYPE = "application/vnd.api+json"
PROVIDER = {
    "name": "MateriaLabs",
    "description": "An event-driven materials-discovery platform: lab uploads, GNN "
                   "predictions and DFT results, each with its signed-ledger provenance.",
    "prefix": "materialabs",
    "homepage": None,
}
# The spec's published JSON Schema of OPTIMADE responses (a name for clients; not fetched).
SCHEMA_URL = "https://schemas.optimade.org/openapi/v1.2/optimade.json"
VERSION_PREFIXES = ("/v1", "/v1.2", "/v1.2.0")


class OptimadeError(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


def _implementation() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("materialabs")
    except PackageNotFoundError:
        ours = "0"
    return {"name": "materialabs", "version": ours,
            "source_url": None, "maintainer": None}


class CountCache:
    """``data_returned`` of recent filters, valid until the catalog file changes.

    Counting every match is the one part of a query whose cost grows with the number of
    matches (a page is at most MAX_PAGE_LIMIT rows); the catalog changes only when the
    catalog service commits, so a count is reused until the database or its WAL file changes
    (their size and mtime, one stat each, seen by every process alike). One thread computes
    a missing count while the others asking for it wait (no herd on a cold filter).
    """

    def __init__(self, size: int = 512) -> None:
        import threading
        from collections import OrderedDict

        self.size = size
        self._values: OrderedDict[tuple, int] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[tuple, threading.Lock] = {}

    def count(self, catalog: Catalog, where: str, parameters: list[Any]) -> int:
        import threading

        key = (_stamp(catalog), where, tuple(parameters))
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            gate = self._pending.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._values:
                    return self._values[key]
            value = catalog.count(where, parameters)
            with self._lock:
                self._values[key] = value
                self._pending.pop(key, None)
                while len(self._values) > self.size:
                    self._values.popitem(last=False)
            return value


def _stamp(catalog: Catalog) -> tuple:
    import os

    stamp: list[int | None] = []
    for path in (catalog.path, catalog.path.with_name(catalog.path.name + "-wal")):
        try:
            info = os.stat(path)
            stamp += [info.st_size, info.st_mtime_ns]
        except OSError:
            stamp += [None, None]
    return tuple(stamp)


class OptimadeService:
    """State shared by the routes: the catalog (read-only, opened when it exists)."""

    def __init__(self, catalog_root: Any) -> None:
        self.catalog_root = catalog_root
        self._catalog: Catalog | None = None
        self._available: tuple[float, int] = (0.0, 0)
        self.counts = CountCache()
        self.implementation = _implementation()

    def catalog(self) -> Catalog | None:
        if self._catalog is None and Catalog.exists(self.catalog_root):
            self._catalog = Catalog(self.catalog_root, readonly=True)
        return self._catalog

    def data_available(self) -> int:
        catalog = self.catalog()
        return self.counts.count(catalog, "", []) if catalog is not None else 0

    # -- documents -----------------------------------------------------------------------
    def meta(self, request: Request, *, returned: int | None = None,
             available: int | None = None, more: bool = False,
             warnings: list[str] | None = None) -> dict[str, Any]:
        representation = request.url.path
        if request.url.query:
            representation += f"?{request.url.query}"
        meta: dict[str, Any] = {
            "query": {"representation": _relative(representation)},
            "api_version": API_VERSION,
            "schema": {"href": SCHEMA_URL},
            "more_data_available": more,
            "time_stamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "provider": PROVIDER,
            "implementation": self.implementation,
        }
        if returned is not None:
            meta["data_returned"] = returned
        if available is not None:
            meta["data_available"] = available
        if warnings:
            meta["warnings"] = [{"type": "warning", "title": "Warning", "detail": w}
                                for w in warnings]
        return meta

    def error(self, request: Request, status: int, title: str, detail: str) -> JSONResponse:
        body = {"errors": [{"status": str(status), "title": title, "detail": detail}],
                "meta": self.meta(request, returned=0)}
        return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def _relative(path: str) -> str:
    """The query's representation relative to the versioned base URL (``/structures?...``)."""
    for marker in ("/optimade/v1.2.0", "/optimade/v1.2", "/optimade/v1", "/optimade"):
        if path.startswith(marker + "/") or path == marker:
            return path[len(marker):] or "/"
    return path


def base_url(request: Request) -> str:
    """The versioned base URL this request came in under (``http://host/optimade/v1``)."""
    path = request.url.path
    root = str(request.base_url).rstrip("/")
    for prefix in VERSION_PREFIXES:
        if path.startswith(f"/optimade{prefix}/"):
            return f"{root}/optimade{prefix}"
    return f"{root}/optimade"


def _integer(name: str, text: str | None, default: int, low: int, high: int | None) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise OptimadeError(400, "Bad Request", f"{name}: expected a whole number, got "
                                                f"{text[:40]!r}") from None
    if value < low or (high is not None and value > high):
        bound = f" to {high:,}" if high is not None else " or more"
        raise OptimadeError(400, "Bad Request", f"{name}: expected {low}{bound}, got {value}")
    return value


def _common_checks(request: Request) -> None:
    params = request.query_params
    response_format = params.get("response_format")
    if response_format not in (None, "", "json"):
        raise OptimadeError(400, "Bad Request", f"response_format: {response_format!r} is not "
                                                "served; the only format is json")
    include = params.get("include")
    if include not in (None, "", "references"):
        raise OptimadeError(400, "Bad Request", f"include: {include!r}; this provider has no "
                                                "relationships to include")


def _response_fields(text: str | None) -> tuple[tuple[str, ...] | None, list[str]]:
    if text is None or text.strip() == "":
        return None, []
    fields, warnings = [], []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        if name in SCALARS or name in LISTS or name in UNSERVED_STANDARD:
            fields.append(name)
        elif name.startswith(PREFIX):
            raise OptimadeError(400, "Bad Request", f"response_fields: unknown property "
                                                    f"{name}")
        elif _PROVIDER_PREFIX.match(name):
            warnings.append(f"response_fields: {name} is not served by this provider")
        else:
            raise OptimadeError(400, "Bad Request", f"response_fields: unknown property "
                                                    f"{name!r}")
    return tuple(dict.fromkeys(fields)), warnings


def _order_by(text: str | None) -> tuple[str, list[str]]:
    if text is None or text.strip() == "":
        return "rowid", []
    terms, warnings = [], []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        descending = part.startswith("-")
        name = part.lstrip("-")
        if name in SORTABLE:
            column = SCALARS[name].column
            terms.append(f"{column} {'DESC' if descending else 'ASC'}")
        elif _PROVIDER_PREFIX.match(name) and not name.startswith(PREFIX):
            warnings.append(f"sort: {name} is not served by this provider; not sorted on it")
        else:
            raise OptimadeError(400, "Bad Request", f"sort: {name!r} is not a sortable "
                                                    f"property; sortable: "
                                                    f"{', '.join(sorted(SORTABLE))}")
    terms.append("rowid ASC")
    return ", ".join(dict.fromkeys(terms)), warnings


def build_router(service: OptimadeService) -> APIRouter:
    router = APIRouter()

    def guarded(handler: Callable[..., Any]) -> Callable[..., Any]:
        def run(request: Request, *args: Any, **kwargs: Any) -> Response:
            try:
                _common_checks(request)
                return handler(request, *args, **kwargs)
            except OptimadeError as error:
                return service.error(request, error.status, error.title, error.detail)
            except FilterError as error:
                return service.error(request, error.status, error.title, error.detail)
            except CatalogError as error:
                return service.error(request, 500, "Internal Server Error",
                                     f"the catalog cannot be read: {error}")
        return run

    def versions(request: Request) -> Response:
        return PlainTextResponse("version\n1\n",
                                 media_type="text/csv; header=present")

    router.add_api_route("/versions", versions, methods=["GET"], tags=["OPTIMADE"],
                         summary="The major API versions served (text/csv)",
                         response_class=PlainTextResponse)

    def info(request: Request) -> Response:
        base = base_url(request)
        root = base if base.rsplit("/", 1)[-1].startswith("v") else base + "/v1"
        data = {"type": "info", "id": "/", "attributes": {
            "api_version": API_VERSION,
            "available_api_versions": [{"url": root, "version": API_VERSION}],
            "formats": ["json"],
            "available_endpoints": ["info", "links", "structures"],
            "entry_types_by_format": {"json": [ENTRY_TYPE]},
            "is_index": False,
        }}
        return _json({"data": data, "meta": service.meta(request)})

    def info_structures(request: Request) -> Response:
        properties: dict[str, Any] = {}
        for name, scalar in SCALARS.items():
            item: dict[str, Any] = {"description": scalar.description,
                                    "sortable": name in SORTABLE, "type": scalar.type}
            if scalar.unit:
                item["unit"] = scalar.unit
            properties[name] = item
        for name, (_, description, unit) in LISTS.items():
            item = {"description": description, "sortable": False, "type": "list"}
            if unit:
                item["unit"] = unit
            properties[name] = item
        data = {"id": ENTRY_TYPE, "type": "info",
                "description": "Crystal structures with their measured, predicted or "
                               "computed properties and signed-ledger provenance.",
                "properties": properties, "formats": ["json"],
                "output_fields_by_format": {"json": ["id", "type", *ALL_FIELDS]}}
        return _json({"data": data, "meta": service.meta(request)})

    def links(request: Request) -> Response:
        data = [{"id": "materialabs", "type": "links", "attributes": {
            "name": PROVIDER["name"], "description": PROVIDER["description"],
            "base_url": str(request.base_url).rstrip("/") + "/optimade",
            "homepage": None, "link_type": "root"}}]
        return _json({"data": data, "meta": service.meta(request, returned=1, available=1)})

    def structures(
        request: Request,
        filter: str | None = Query(None, description="An OPTIMADE v1.2 filter"),  # noqa: A002
        page_limit: str | None = Query(None, description=f"Entries per page (at most "
                                                         f"{MAX_PAGE_LIMIT})"),
        page_offset: str | None = Query(None, description="Entries to skip"),
        response_fields: str | None = Query(None, description="Comma-separated properties"),
        sort: str | None = Query(None, description="Comma-separated properties, '-' for "
                                                   "descending"),
    ) -> Response:
        warnings: list[str] = []
        limit = _integer("page_limit", page_limit, DEFAULT_PAGE_LIMIT, 0, None)
        if limit > MAX_PAGE_LIMIT:
            warnings.append(f"page_limit {limit} capped to {MAX_PAGE_LIMIT}")
            limit = MAX_PAGE_LIMIT
        offset = _integer("page_offset", page_offset, 0, 0, MAX_OFFSET)
        fields, field_warnings = _response_fields(response_fields)
        order, sort_warnings = _order_by(sort)
        translation = translate(filter or "")
        warnings += field_warnings + sort_warnings + translation.warnings
        catalog = service.catalog()
        rows: list[dict[str, Any]] = []
        returned = 0
        if catalog is not None:
            returned = service.counts.count(catalog, translation.where,
                                            translation.parameters)
            if limit and offset < returned:
                # Walking the rows in insertion order reaches the page after about
                # (offset + limit) / (the share of rows matching) rows; an index gathers and
                # sorts every match. Walk when that is at most SCAN_ROWS rows.
                scan = order == "rowid" and \
                    (offset + limit) * service.data_available() <= SCAN_ROWS * returned
                rows = catalog.select(translation.where, translation.parameters,
                                      order_by=order, limit=limit, offset=offset, scan=scan)
        base = base_url(request)
        more = offset + len(rows) < returned
        page_links: dict[str, Any] = {"next": None}
        if more:
            page_links["next"] = str(request.url.include_query_params(
                page_offset=offset + len(rows), page_limit=limit or DEFAULT_PAGE_LIMIT))
        body = {"data": [entry(row, fields, base) for row in rows],
                "meta": service.meta(request, returned=returned,
                                     available=service.data_available(), more=more,
                                     warnings=warnings),
                "links": page_links}
        return _json(body)

    def structure(request: Request, entry_id: str,
                  response_fields: str | None = Query(None)) -> Response:
        fields, warnings = _response_fields(response_fields)
        catalog = service.catalog()
        rows = catalog.select("record_id = ?", [entry_id], limit=1) if catalog else []
        if not rows:
            raise OptimadeError(404, "Not Found", f"no structure with id {entry_id!r}")
        body = {"data": entry(rows[0], fields, base_url(request)),
                "meta": service.meta(request, returned=1, available=service.data_available(),
                                     warnings=warnings),
                "links": {"next": None}}
        return _json(body)

    routes: list[tuple[str, Callable[..., Any], str]] = [
        ("/info", info, "Information about this OPTIMADE implementation"),
        ("/info/structures", info_structures, "The structures entry type and its properties"),
        ("/links", links, "Links to related OPTIMADE databases"),
        ("/structures", structures, "Search structures with an OPTIMADE filter"),
        ("/structures/{entry_id:path}", structure, "One structure by id"),
    ]
    for prefix in ("", *VERSION_PREFIXES):
        for path, handler, summary in routes:
            router.add_api_route(f"{prefix}{path}", _wrapped(guarded, handler), methods=["GET"],
                                 tags=["OPTIMADE"], summary=summary,
                                 include_in_schema=prefix == "/v1")
    return router


def _wrapped(guarded: Callable[..., Any], handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler`` behind ``guarded``, keeping its signature (FastAPI reads parameters)."""
    import functools

    run = guarded(handler)
    return functools.wraps(handler)(run)


def _json(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, media_type=MEDIA_TYPE)
