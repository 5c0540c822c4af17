"""`simsearch serve`: a local web page over one index (FastAPI + uvicorn, extra ``[serve]``).

Routes:

- ``GET /``: the search page (:mod:`simsearch.workflows.serve_page`).
- ``GET /api/query?q=TEXT&k=K``: JSON, the same array of objects as
  ``simsearch query TEXT --format json --show COLS`` (``COLS``: every source column
  but the indexed one).
- ``GET /api/similar/{row}?k=K``: JSON, as ``simsearch similar --doc ROW --format json``.
- Both also take ``mode`` (hybrid, dense, lexical), ``dense_weight`` (0 to 1) and
  ``fusion`` (convex, rrf) for one request, as ``--mode``, ``--dense-weight`` and
  ``--fusion`` do for one command; without them the index's stored settings apply.
- ``GET /api/query.xlsx?...`` and ``GET /api/similar/{row}.xlsx?...``: the same results as
  a formatted ``.xlsx`` download (built in memory).

Safety: the index is opened once at startup and no parameter names a file; every text
is escaped (the page builds DOM text nodes; the error page uses ``html.escape``); the
server binds 127.0.0.1 unless told otherwise and, on loopback, answers only requests
whose ``Host`` is a loopback name (so a web page elsewhere cannot reach it through DNS
rebinding); responses carry a Content-Security-Policy that allows nothing but the
server itself. Bad input gets HTTP 400 and ``{"error": "one line"}`` (JSON routes) or
an error page (others).
"""

from __future__ import annotations

import html
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.store import index as store

if TYPE_CHECKING:
    from fastapi import FastAPI

#: Library parameter -> the name a request uses for it (errors name what the user sent).
WEB_NAMES = {"doc": "row", "text": "q"}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class ServeOptions:
    """How the server answers.

    Attributes:
        host: interface to bind (``127.0.0.1``: this machine only).
        port: TCP port.
        k: results per search by default.
        max_k: the largest ``k`` a request may ask for (bounds the work per request).
        max_query_chars: the longest query accepted.
        show: source columns returned with each result (default: all but the indexed one).
        allowed_hosts: ``Host`` header values accepted (default: the loopback names
            when ``host`` is loopback, else any).
        rerank: a cross-encoder (hub id or directory) reranking every search's top
            ``rerank_depth`` hits (:mod:`simsearch.retrieval.rerank`); loaded at start-up.
        rerank_depth: first-stage hits reranked per search.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    k: int = 10
    max_k: int = 200
    max_query_chars: int = 1000
    show: tuple[str, ...] | None = None
    allowed_hosts: tuple[str, ...] | None = None
    rerank: str | None = None
    rerank_depth: int = 50


class Searcher:
    """The requests' view of one :class:`simsearch.searcher.Searcher`: the index, its
    ranking parts and its query encoder, loaded once and shared by all requests (the
    encoder on the first query, under the searcher's lock)."""

    def __init__(self, index: store.Index, show: Sequence[str], second: Any = None) -> None:
        from simsearch.searcher import Searcher as Warm

        self.warm = Warm(index)
        self.index = index
        self.show = list(show)
        self._lock = threading.Lock()
        #: (RerankOptions, loaded Reranker) when the server reranks, else None.
        self.second = second

    def encoder(self) -> Any:
        return self.warm.encoder()

    def query(self, text: str, k: int, **ranking: Any) -> list[dict[str, Any]]:
        """Results for one query as the JSON objects of ``query --format json``."""
        return self._plain(self.hits("query", text, k, **ranking))

    def similar(self, row: int, k: int, **ranking: Any) -> list[dict[str, Any]]:
        """Results for one row as the JSON objects of ``similar --format json``."""
        return self._plain(self.hits("similar", row, k, **ranking))

    def _plain(self, hits: list[Any]) -> list[dict[str, Any]]:
        return [h.to_json(self.show) for h in hits]

    def hits(self, kind: str, value: Any, k: int, **ranking: Any) -> list[Any]:
        """The :class:`~simsearch.retrieval.hit.Hit` objects of a query (``kind``
        ``"query"``, ``value`` the text) or of ``similar`` (``value`` the row).

        Args:
            ranking: ``mode``, ``dense_weight`` and ``fusion`` for this request only
                (``None`` or absent: the index's stored settings).
        """
        ranking = {key: v for key, v in ranking.items() if v is not None}
        first_k = k if self.second is None else self.second[0].first_k(k)
        if kind == "similar":
            hits = self.warm.similar_hits(value, first_k, **ranking)
            text = self.index.rows([value])[0].get(self.index.column)
            return self._reranked(hits, "" if text is None else str(text), k)
        if not value.strip():
            raise InvalidParameter("q", "the query ({name}) is empty; type some text to search for")
        first_k = min(first_k, self.index.n_docs)
        hits = self.warm.query_hits(value, first_k, **ranking)
        return self._reranked(hits, value, k)

    def _reranked(self, hits: list[Any], text: str, k: int) -> list[Any]:
        if self.second is None:
            return hits
        from simsearch.retrieval.rerank import rerank

        options, reranker = self.second
        with self._lock:  # one forward pass at a time through the shared model
            return rerank(hits, [text], reranker, k, options)


def hits_xlsx(hits: list[Any], show: Sequence[str]) -> bytes:
    """Results as a formatted ``.xlsx`` file in memory (see :mod:`simsearch.tables.write`):
    the flat fields of :meth:`~simsearch.retrieval.hit.Hit.flat`, as ``-o res.xlsx``
    writes them, with the ``show`` columns and the text."""
    import pandas as pd

    from simsearch.tables.write import write_xlsx

    buffer = io.BytesIO()
    write_xlsx({"results": pd.DataFrame([h.flat(show) for h in hits])}, buffer)
    return buffer.getvalue()


def create_app(index: store.Index, options: ServeOptions = ServeOptions()) -> FastAPI:
    """The FastAPI application serving ``index`` (see the module doc for the routes).

    Raises:
        SimsearchError: a ``show`` column that is not in the index's source columns.
    """
    from fastapi import FastAPI

    columns = index.meta.columns
    show = [c for c in columns if c != index.column] if options.show is None else options.show
    index.meta.check_columns(show)
    app = FastAPI(title="simsearch", docs_url=None, redoc_url=None, openapi_url=None)
    _add_guards(app, options)
    _add_page(app, index, options)
    _add_api(app, Searcher(index, show, _second_stage(options)), options)
    if index.meta.lexical is not None:
        from simsearch.text.kiwi import start_kiwi

        start_kiwi()  # the first query then finds the analyser ready
    return app


def _second_stage(options: ServeOptions) -> Any:
    """(RerankOptions, loaded reranker) of ``options.rerank``, or None.

    Raises:
        InvalidParameter: a bad depth or a model that does not load.
    """
    if options.rerank is None:
        return None
    from simsearch.encoding.cross_encoder import load_reranker
    from simsearch.retrieval.rerank import RerankOptions

    second = RerankOptions(options.rerank, options.rerank_depth)
    second.check()
    return second, load_reranker(second.model)


def _add_guards(app: FastAPI, options: ServeOptions) -> None:
    """Host check, security headers, and one-line errors (JSON or an escaped page)."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException

    allowed = options.allowed_hosts
    if allowed is None and options.host in LOOPBACK_HOSTS:
        allowed = LOOPBACK_HOSTS
    if allowed:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed))

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def error(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/") and not request.url.path.endswith(".xlsx"):
            return JSONResponse({"error": message}, status_code=status)
        page = _page_module().ERROR_PAGE.format(message=html.escape(message))
        return HTMLResponse(page, status_code=status)

    @app.exception_handler(SimsearchError)
    async def bad_input(request: Request, exc: SimsearchError) -> Response:
        return error(request, 400, exc.render(lambda param: WEB_NAMES.get(param, param)))

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> Response:
        return error(request, 400, _validation_message(exc, options))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = "no such page" if exc.status_code == 404 else str(exc.detail)
        return error(request, exc.status_code, message)


def _add_page(app: FastAPI, index: store.Index, options: ServeOptions) -> None:
    """The page and its script and style (no file is read: they are strings)."""
    from fastapi.responses import HTMLResponse, Response

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        about = (
            f"{index.n_docs:,} documents, column {index.column!r} of "
            f"{_source_name(index)}, model {_model_name(index.model)}"
        )
        page = _page_module()
        return page.PAGE.format(
            title=html.escape(_source_name(index)),
            about=html.escape(about),
            k=options.k,
            max_k=options.max_k,
            max_query=options.max_query_chars,
            mode_select=_mode_select(index, page.MODE_SELECT),
        )

    @app.get("/static/app.js")
    def script() -> Response:
        return Response(_page_module().JS, media_type="text/javascript; charset=utf-8")

    @app.get("/static/app.css")
    def style() -> Response:
        return Response(_page_module().CSS, media_type="text/css; charset=utf-8")


def _mode_select(index: store.Index, template: str) -> str:
    """The page's mode control: the modes this index can run, or nothing on a dense-only
    index (one mode, nothing to choose)."""
    if index.meta.lexical is None:
        return ""
    from simsearch.retrieval.modes import MODES

    options = "\n".join(f'    <option value="{m}">{m}</option>' for m in MODES)
    return template.format(options=options)


def _add_api(app: FastAPI, searcher: Searcher, options: ServeOptions) -> None:
    """The JSON and .xlsx routes (parameters: q, k, row, and the ranking's mode,
    dense_weight and fusion; none names a file)."""
    from fastapi import Depends, Query
    from fastapi.responses import Response

    K = Query(options.k, ge=1, le=options.max_k)  # noqa: N806 - a declared parameter
    Q = Query(..., min_length=1, max_length=options.max_query_chars)  # noqa: N806

    def ranking(
        mode: str | None = Query(None, pattern="^(hybrid|dense|lexical)$"),
        dense_weight: float | None = Query(None, ge=0.0, le=1.0, allow_inf_nan=False),
        fusion: str | None = Query(None, pattern="^(convex|rrf)$"),
    ) -> dict[str, Any]:
        return {"mode": mode, "dense_weight": dense_weight, "fusion": fusion}

    R = Depends(ranking)  # noqa: N806

    @app.get("/api/query")
    def api_query(q: str = Q, k: int = K, how: dict = R) -> list[dict[str, Any]]:
        return searcher.query(q, k, **how)

    @app.get("/api/query.xlsx")
    def api_query_xlsx(q: str = Q, k: int = K, how: dict = R) -> Response:
        return _xlsx(searcher.hits("query", q, k, **how), searcher.show, "query")

    # The .xlsx route is declared first: "/api/similar/{row}" would take "3.xlsx" as a
    # row and refuse it as not an integer.
    @app.get("/api/similar/{row}.xlsx")
    def api_similar_xlsx(row: int, k: int = K, how: dict = R) -> Response:
        return _xlsx(searcher.hits("similar", row, k, **how), searcher.show, f"similar-{row}")

    @app.get("/api/similar/{row}")
    def api_similar(row: int, k: int = K, how: dict = R) -> list[dict[str, Any]]:
        return searcher.similar(row, k, **how)


def _xlsx(hits: list[Any], show: Sequence[str], stem: str) -> Any:
    from fastapi.responses import Response

    return Response(
        hits_xlsx(hits, show),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="simsearch-{stem}.xlsx"'},
    )


def _validation_message(exc: Any, options: ServeOptions) -> str:
    """One line naming the parameter and what it must be."""
    first = exc.errors()[0]
    name = str(first.get("loc", ["", "?"])[-1])
    kind = first.get("type", "")
    if name == "k":
        return f"k must be a whole number from 1 to {options.max_k}"
    if name == "row":
        return "the row must be a whole number (0-based row of the source file)"
    if name == "q" and kind == "missing":
        return "no query given; pass q=TEXT"
    if name == "q":
        return f"the query must be 1 to {options.max_query_chars} characters long"
    if name == "mode":
        return "mode must be hybrid, dense or lexical"
    if name == "dense_weight":
        return "dense_weight must be a number from 0 to 1"
    if name == "fusion":
        return "fusion must be convex or rrf"
    return f"bad parameter {name!r}: {first.get('msg', 'invalid')}"


def _page_module() -> Any:
    from simsearch.workflows import serve_page

    return serve_page


def _source_name(index: store.Index) -> str:
    from pathlib import Path

    return Path(index.meta.source.path).name or index.path.name


def _model_name(model: str) -> str:
    """A hub id as is; a local directory by its last two parts (``…/minilm/model``)."""
    from pathlib import Path

    path = Path(model)
    return "…/" + "/".join(path.parts[-2:]) if path.is_absolute() else model


def serve(index: store.Index, options: ServeOptions = ServeOptions(), log: Any = print) -> None:
    """Run the server until Ctrl-C (uvicorn, one process).

    Raises:
        SimsearchError: fastapi/uvicorn are not installed, or the port is taken.
    """
    try:
        import uvicorn
    except ImportError:
        raise SimsearchError(
            "the web page needs fastapi and uvicorn; install them with "
            "pip install 'simsearch[serve]'"
        ) from None
    app = create_app(index, options)
    if options.host not in LOOPBACK_HOSTS:
        log(
            f"Warning: serving on {options.host}: other machines on the network can read this index"
        )
    log(f"serving {index.path} on http://{_url_host(options.host)}:{options.port}/ (Ctrl-C stops)")
    uvicorn.run(app, host=options.host, port=options.port, log_level="warning")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
