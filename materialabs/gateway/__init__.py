"""The HTTP gateway: OPTIMADE at /optimade, the explorer's JSON API at /api/v1, the web
explorer at /explorer, and the OpenAPI description at /openapi.json with a docs page at /docs.

It only reads: the catalog (which the catalog service writes) and the ledger (which the
ledger service writes), both from the home it is given, so any number of gateway processes
can serve one home while the services run.

``/docs`` is a page of our own (``docs_page.html``) that renders /openapi.json with a few
lines of inline JavaScript: FastAPI's default Swagger UI and ReDoc pages load their scripts
from a CDN, and neither fastapi nor starlette ships those assets, so on a machine without
the internet they show a blank page.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from materialabs.gateway.api import Reader
from materialabs.gateway.api import build_router as api_router
from materialabs.gateway.streams import build_router as stream_router
from materialabs.gateway.transparency import build_router as log_router
from materialabs.gateway.uploads import build_router as uploads_router
from materialabs.optimade.api import OptimadeService
from materialabs.optimade.api import build_router as optimade_router

DOCS_PAGE = Path(__file__).with_name("docs_page.html")
EXPLORER_PLACEHOLDER = ("<!doctype html><meta charset='utf-8'><title>explorer</title>"
                        "<p>explorer: the web pages are not installed in this build; the "
                        "API is at <a href='../docs'>/docs</a>.</p>")
_VERSION = re.compile(r"^/optimade/v(\d+)(?:[./]|$)")


def explorer_static() -> Path | None:
    """The explorer's static folder, if the explorer package is installed."""
    import importlib

    try:
        explorer = importlib.import_module("materialabs.explorer")  # the explorer's package
    except ImportError:
        return None
    folder = getattr(explorer, "STATIC", None) or Path(str(explorer.__file__)).with_name("static")
    return folder if Path(folder).is_dir() else None


def create_app(home: Path) -> FastAPI:
    """The gateway over one MateriaLabs home (its catalog and ledger folders)."""
    home = Path(home)
    app = FastAPI(title="MateriaLabs gateway", version="1",
                  description="OPTIMADE v1.2 over the MateriaLabs catalog, and the JSON API "
                              "of the web explorer, signed uploads, candidate streams "
                              "(SSE) and the ledger as a C2SP transparency log.",
                  docs_url=None, redoc_url=None)
    optimade = OptimadeService(home / "catalog")
    app.include_router(optimade_router(optimade), prefix="/optimade")
    app.include_router(api_router(Reader(home)))
    app.include_router(log_router(Reader(home)))  # /log: the ledger as a C2SP tlog
    app.include_router(uploads_router(home))  # /v1/uploads: signed uploads
    app.include_router(stream_router(Reader(home)))  # /v1/stream: candidates as SSE

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/explorer/")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE.read_text(encoding="utf-8"))

    static = explorer_static()
    if static is not None:
        app.mount("/explorer", StaticFiles(directory=static, html=True), name="explorer")
    else:
        @app.get("/explorer/", include_in_schema=False)
        def explorer_placeholder() -> HTMLResponse:
            return HTMLResponse(EXPLORER_PLACEHOLDER)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, error: StarletteHTTPException) -> Response:
        path = request.url.path
        if path.startswith("/optimade"):
            version = _VERSION.match(path)
            if version and version.group(1) != "1":
                return optimade.error(request, 553, "Version Not Supported",
                                      f"API version {version.group(1)} is not served; "
                                      "/optimade/versions lists the versions")
            return optimade.error(request, error.status_code,
                                  "Not Found" if error.status_code == 404 else "Error",
                                  str(error.detail))
        return JSONResponse({"detail": error.detail}, status_code=error.status_code,
                            headers=getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, error: RequestValidationError) -> Response:
        detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                           for e in error.errors()) or "bad request"
        if request.url.path.startswith("/optimade"):
            return optimade.error(request, 400, "Bad Request", detail)
        return JSONResponse({"detail": detail}, status_code=400)

    @app.exception_handler(Exception)
    def server_error(request: Request, error: Exception) -> Response:
        # Never a traceback to the client; the server log has it.
        import logging

        logging.getLogger("materialabs.gateway").exception("unhandled error on %s",
                                                           request.url.path)
        detail = f"internal error ({type(error).__name__})"
        if request.url.path.startswith("/optimade"):
            return optimade.error(request, 500, "Internal Server Error", detail)
        return JSONResponse({"detail": detail}, status_code=500)

    return app


def app_from_environment() -> FastAPI:
    """The gateway over $MATERIALABS_HOME (uvicorn's factory when it runs several workers)."""
    from materialabs import config

    return create_app(config.home())


__all__ = ["app_from_environment", "create_app"]
