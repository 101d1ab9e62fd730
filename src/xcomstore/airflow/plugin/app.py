"""The FastAPI application mounted on the Airflow API server at /xcomstore.

HTML pages (server-rendered, no JavaScript) and JSON endpoints beside them:

    /xcomstore/                              DAGs with objects in the store      /xcomstore/api/dags
    /xcomstore/dags/<dag_id>                 its runs                            /xcomstore/api/dags/<dag_id>/runs
    /xcomstore/dags/<dag_id>/run?run_id=…    a run's XComs (&task_id=&map_index=) /xcomstore/api/dags/<dag_id>/xcoms?…
    /xcomstore/dags/<dag_id>/xcom?run_id=…&task_id=…&map_index=…&key=…  a preview  /xcomstore/api/dags/<dag_id>/xcom?…
    /xcomstore/dags/<dag_id>/download?…&format=…                         the value, streamed

Every DAG-scoped route depends on Airflow's own `requires_access_dag(GET, XCOM)`: the user
comes from the JWT (Authorization header or the UI's cookie) and the auth manager decides, as
for Airflow's XCom API. The DAG list shows only the DAGs the auth manager lets the user read.
The object read is always the one computed from the checked dag_id and the other path
parameters: no URI is ever taken from the request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import get_user, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from xcomstore.airflow.environment import configured_store
from xcomstore.airflow.plugin import views
from xcomstore.airflow.plugin.source import StoreBrowser
from xcomstore.errors import ObjectFormatError, ObjectNotFoundError, UnknownFormatError, XComStoreError
from xcomstore.identity import Origin
from xcomstore.ops.export import download
from xcomstore.ops.preview import MAX_ROWS as SHOWN_ROWS
from xcomstore.ops.preview import preview

P = ParamSpec("P")
T = TypeVar("T")
MAX_ROWS = 200
SECURITY_HEADERS = {
    # No script at all, styles inline only: stored data that slipped through escaping could
    # still not run anything. Framing only by the Airflow UI (same origin).
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'self'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

CanReadXComs = Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.XCOM))
User = Annotated[BaseUser, Depends(get_user)]
DagId = Annotated[str, Path(pattern=r"^[\w.-]+$", description="a dag_id (letters, digits, _ . -)")]
RunId = Annotated[str, Query(min_length=1, description="the DAG run's run_id")]
TaskId = Annotated[str, Query(min_length=1)]
Key = Annotated[str, Query(description="the XCom key")]
Rows = Annotated[
    int, Query(ge=1, le=MAX_ROWS, description=f"table rows to preview (at most {SHOWN_ROWS} are shown)")
]


@functools.cache
def _configured_browser() -> StoreBrowser:
    return StoreBrowser(configured_store())


def get_browser() -> StoreBrowser:
    """The store configured for Airflow ([xcomstore] / AIRFLOW__XCOMSTORE__*), opened once."""
    try:
        return _configured_browser()
    except XComStoreError as exc:
        raise HTTPException(503, f"the xcomstore store is not usable: {exc}") from exc


Browser = Annotated[StoreBrowser, Depends(get_browser)]


def create_app() -> FastAPI:
    app = FastAPI(
        title="xcomstore",
        description="Browse the XComs xcomstore keeps in object storage.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.middleware("http")(_security_headers)
    _html_routes(app)
    _json_routes(app)
    return app


# -- HTML pages ------------------------------------------------------------------------------
def _html_routes(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse, name="index")
    def index_page(request: Request, user: User, browser: Browser) -> HTMLResponse:
        return views.page(request, "dags.html", dags=_readable_dags(browser, user))

    @app.get("/dags/{dag_id}", response_class=HTMLResponse, dependencies=[CanReadXComs])
    def dag_page(request: Request, dag_id: DagId, browser: Browser) -> HTMLResponse:
        runs = _call(browser.runs, dag_id)
        return views.page(request, "runs.html", dag_id=dag_id, runs=[views.run_json(r) for r in runs])

    @app.get("/dags/{dag_id}/run", response_class=HTMLResponse, dependencies=[CanReadXComs])
    def run_page(
        request: Request,
        dag_id: DagId,
        run_id: RunId,
        browser: Browser,
        task_id: str | None = None,
        map_index: str | None = None,
    ) -> HTMLResponse:
        index = views.map_index(map_index)
        entries = _call(browser.xcoms, dag_id, run_id, task_id or None, index)
        return views.page(
            request,
            "xcoms.html",
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id or None,
            map_index=index,
            entries=[views.entry_json(e) for e in entries],
        )

    @app.get("/dags/{dag_id}/xcom", response_class=HTMLResponse, dependencies=[CanReadXComs])
    def xcom_page(
        request: Request,
        dag_id: DagId,
        run_id: RunId,
        task_id: TaskId,
        key: Key,
        browser: Browser,
        map_index: int = -1,
        rows: Rows = 20,
    ) -> HTMLResponse:
        origin = Origin(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, key=key)
        shown = _preview(browser, origin, rows)
        return views.page(request, "xcom.html", origin=origin, **shown)

    @app.get("/dags/{dag_id}/download", dependencies=[CanReadXComs])
    def download_value(
        dag_id: DagId,
        run_id: RunId,
        task_id: TaskId,
        key: Key,
        browser: Browser,
        map_index: int = -1,
        format: str | None = None,
    ) -> StreamingResponse:
        uri = browser.uri(Origin(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, key=key))
        found = _call(download, browser.store, uri, format)
        headers = {"Content-Disposition": found.content_disposition()}
        return StreamingResponse(found.chunks, media_type=found.media_type, headers=headers)


# -- JSON ------------------------------------------------------------------------------------
def _json_routes(app: FastAPI) -> None:
    @app.get("/api/dags")
    def list_dags(user: User, browser: Browser) -> dict[str, Any]:
        return {"dags": _readable_dags(browser, user)}

    @app.get("/api/dags/{dag_id}/runs", dependencies=[CanReadXComs])
    def list_runs(dag_id: DagId, browser: Browser) -> dict[str, Any]:
        runs = _call(browser.runs, dag_id)
        return {"dag_id": dag_id, "runs": [views.run_json(r) for r in runs]}

    @app.get("/api/dags/{dag_id}/xcoms", dependencies=[CanReadXComs])
    def list_xcoms(
        dag_id: DagId,
        run_id: RunId,
        browser: Browser,
        task_id: str | None = None,
        map_index: int | None = None,
    ) -> dict[str, Any]:
        entries = _call(browser.xcoms, dag_id, run_id, task_id or None, map_index)
        return {"dag_id": dag_id, "run_id": run_id, "xcoms": [views.entry_json(e) for e in entries]}

    @app.get("/api/dags/{dag_id}/xcom", dependencies=[CanReadXComs])
    def get_xcom(
        dag_id: DagId,
        run_id: RunId,
        task_id: TaskId,
        key: Key,
        browser: Browser,
        map_index: int = -1,
        rows: Rows = 20,
    ) -> dict[str, Any]:
        shown = _preview(
            browser, Origin(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, key=key), rows
        )
        return {"uri": shown["uri"], "header": shown["header"], "preview": shown["preview"].to_json()}


# -- shared ----------------------------------------------------------------------------------
def _readable_dags(browser: StoreBrowser, user: BaseUser) -> list[str]:
    """The DAGs in the store whose XComs the auth manager lets `user` read."""
    from airflow.models.dag import DagModel

    dag_ids = _call(browser.dag_ids)
    teams = DagModel.get_dag_id_to_team_name_mapping(dag_ids) if dag_ids else {}
    manager = get_auth_manager()
    return [
        dag_id
        for dag_id in dag_ids
        if manager.is_authorized_dag(
            method="GET",
            access_entity=DagAccessEntity.XCOM,
            details=DagDetails(id=dag_id, team_name=teams.get(dag_id)),
            user=user,
        )
    ]


def _preview(browser: StoreBrowser, origin: Origin, rows: int) -> dict[str, Any]:
    uri = browser.uri(origin)
    try:
        shown = _call(preview, browser.store, uri, rows)
    except HTTPException:
        raise
    except Exception as exc:  # a damaged payload fails in pyarrow, numpy or a decompressor
        raise HTTPException(502, f"{uri} cannot be previewed: {type(exc).__name__}: {exc}") from exc
    return {"uri": uri, "header": views.header_json(shown.header), "preview": shown}


def _call(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a store operation; its errors become HTTP errors that say what went wrong."""
    try:
        return function(*args, **kwargs)
    except ObjectNotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    except UnknownFormatError as exc:
        raise HTTPException(400, str(exc)) from exc
    except ObjectFormatError as exc:  # damaged, or forged by whoever can write to the store
        raise HTTPException(502, f"the object cannot be read: {exc}") from exc
    except XComStoreError as exc:
        raise HTTPException(502, f"the store could not be read: {exc}") from exc


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """JSON for the API; for pages, the login page when signed out, else a readable error page."""
    headers = getattr(exc, "headers", None)
    if _is_api(request):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
    if exc.status_code == 401:
        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
    return views.page(
        request, "error.html", status_code=exc.status_code, status=exc.status_code, detail=exc.detail
    )


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(views.prefix(request) + "/api/")


async def _security_headers(request: Request, call_next: Any) -> Response:
    response: Response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
