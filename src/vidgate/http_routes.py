"""How the app holds and serves its routes: flat, found by path, and with simple dependencies
resolved directly.

With FastAPI 0.163 most of a cached read's time went to routing and dependency handling rather
than to the endpoint. Three things here take that away without changing what any route answers:

1. **Flat routes** (`add_routes`). FastAPI keeps an included router as a wrapper that is walked
   route by route on every request, twice (to match, then to dispatch). The app holds copies of
   the routers' own `APIRoute`s instead, which already carry the router's prefix, tags,
   dependencies and responses (vidgate includes its routers with nothing added), in the same
   order, with the app's dependency overrides as `include_router` would give them.

2. **A route index** (`RouteIndex`, first in the app's routes). Starlette tries routes in order,
   one regular expression each; with ~150 routes a route in the middle paid a microsecond for each
   one before it. The index only narrows the candidates, kept in the app's order, so the first
   full match is the one the plain scan would have found:

   - a path that is some route's literal path (`/healthz`, `/api/auth/me`) maps to the routes that
     could match it: that route, any other method's route on the same path, and any parameterised
     route whose pattern covers it;
   - any other path is looked up by its first two segments (`/api/videos/tasks/<id>` by `api`,
     `videos`): the parameterised routes whose literal beginning agrees, plus those with fewer than
     two literal segments. A literal route cannot match such a path.

   The router handles everything else as before: no full match (404, 405, the trailing-slash
   redirect), a match that is not an `APIRoute` (the documentation pages), a `root_path`, and
   requests traced by FastAPI's telemetry (which records the route as the router selects it).

3. **Direct handling** (`direct_handler`). FastAPI's handler spends about 12 µs per dependency
   per request (it recomputes each one's cache key and kind, and reads the query string, headers
   and cookies for each), as much again for a path parameter, and more around the endpoint. For a
   route that takes no body and whose dependencies are all async functions (or FastAPI's security
   schemes) taking only the request, string path parameters and other such dependencies, the app
   resolves them itself, in FastAPI's order and each once per request as FastAPI caches them,
   runs the endpoint, and validates and serialises its answer with FastAPI's own
   `serialize_response`. Such a route falls back to FastAPI's handler while the app has
   dependency overrides or FastAPI's telemetry traces the request; every other route always uses
   it. The OpenAPI document is made from the routes' real dependencies either way.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, request_response, serialize_response
from fastapi.utils import is_body_allowed_for_status_code
from starlette.convertors import PathConvertor, StringConvertor
from starlette.datastructures import URLPath
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

# Paths are bucketed by this many leading segments (`/api/videos/...` -> ("api", "videos")).
BUCKET_SEGMENTS = 2

_NO_MATCH: tuple[Match, Scope] = (Match.NONE, {})


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """Add each router's routes to the app itself, in order (see the module: 1 and 3)."""
    for router in routers:
        for route in router.routes:
            app.router.routes.append(_served(route, app) if isinstance(route, APIRoute) else route)


def index_routes(app: FastAPI) -> RouteIndex:
    """Put a `RouteIndex` of the app's current routes in front of them."""
    index = RouteIndex(app.router.routes)
    app.router.routes.insert(0, index)
    return index


# --- 2. the route index -------------------------------------------------------------------------


def _is_literal(route: BaseRoute) -> bool:
    """A route whose pattern matches exactly one path: its own."""
    return isinstance(route, Route) and "{" not in route.path


def _literal_head(route: BaseRoute) -> tuple[str, ...] | None:
    """The route's leading path segments that hold no parameter; None when unknown (not a
    `Route`: a mount or a router may match anything)."""
    if not isinstance(route, Route):
        return None
    head: list[str] = []
    for segment in route.path.split("/")[1:]:
        if "{" in segment:
            break
        head.append(segment)
    return tuple(head)


def _could_match(route: BaseRoute, path: str) -> bool:
    """Whether `route` may match a request for `path` (with some method)."""
    if not isinstance(route, Route):
        return True
    return route.path_regex.match(path) is not None


def _agrees(head: tuple[str, ...] | None, bucket: tuple[str, ...]) -> bool:
    """Whether a route with this literal beginning may match a path in `bucket`."""
    if head is None:
        return True
    return all(a == b for a, b in zip(head, bucket, strict=False))


def _bucket_of(path: str) -> tuple[str, ...]:
    return tuple(path.split("/", BUCKET_SEGMENTS + 1)[1 : BUCKET_SEGMENTS + 1])


class RouteIndex(BaseRoute):
    """Matches a request against the few routes that could match its path (see the module)."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        routes = list(routes)
        self._by_path: dict[str, tuple[BaseRoute, ...]] = {}
        for route in routes:
            if isinstance(route, Route) and _is_literal(route):
                self._by_path[route.path] = tuple(r for r in routes if _could_match(r, route.path))
        # (route, its literal beginning) for every route that may match more than one path.
        patterned = [(r, _literal_head(r)) for r in routes if not _is_literal(r)]
        buckets = {h[:BUCKET_SEGMENTS] for _, h in patterned if h and len(h) >= BUCKET_SEGMENTS}
        self._by_bucket: dict[tuple[str, ...], tuple[BaseRoute, ...]] = {
            bucket: tuple(r for r, head in patterned if _agrees(head, bucket)) for bucket in buckets
        }
        # Paths whose first segments no route spells out: only routes that leave them open.
        self._others = tuple(
            r for r, head in patterned if head is None or len(head) < BUCKET_SEGMENTS
        )

    def candidates(self, path: str) -> tuple[BaseRoute, ...]:
        """The routes, in the app's order, that could match `path`."""
        found = self._by_path.get(path)
        if found is not None:
            return found
        return self._by_bucket.get(_bucket_of(path), self._others)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] != "http"
            or scope.get("root_path")
            or scope.get("fastapi.telemetry") is not None
        ):
            return _NO_MATCH
        for route in self.candidates(scope["path"]):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                # The APIRoute puts itself in the child scope as "route"; `handle` dispatches to it.
                return (match, child_scope) if isinstance(route, APIRoute) else _NO_MATCH
        return _NO_MATCH

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: APIRoute = scope["route"]
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)  # the routes behind the index answer this


# --- 3. direct dependencies ---------------------------------------------------------------------

# Resolves a dependency (or the endpoint) for a request, given the request's dependency cache.
_Resolver = Callable[[Request, dict[Any, Any]], Awaitable[Any]]
_Handler = Callable[[Request], Awaitable[Response]]


def _served(route: APIRoute, app: FastAPI) -> APIRoute:
    """A copy of `route` as the app serves it: FastAPI's handler, with the app's dependency
    overrides as `include_router` would give it, and in front of it the direct one when the
    route is simple enough (the module, 3)."""
    served = copy.copy(route)
    served.dependency_overrides_provider = app
    fastapi_handler = served.get_route_handler()
    direct = direct_handler(route)
    if direct is None:
        served.app = request_response(fastapi_handler)
        return served

    async def handler(request: Request) -> Response:
        # Overrides (tests) and telemetry are FastAPI's business: its handler applies them.
        if app.dependency_overrides or request.scope.get("fastapi.telemetry") is not None:
            return await fastapi_handler(request)
        return await direct(request)

    served.app = request_response(handler)
    return served


def direct_handler(route: APIRoute) -> _Handler | None:
    """What FastAPI's handler does for this route, when its dependencies can be resolved here and
    the parts it skips cannot apply (a body, a sub-response for dependencies to set headers or a
    status on, background tasks, streams): resolve, run the endpoint, then validate and
    serialise its answer with the route's response model, as FastAPI's `serialize_response`."""
    if route.body_field is not None or route.is_sse_stream or route.is_json_stream:
        return None
    if not isinstance(route.response_class, DefaultPlaceholder):
        return None
    resolve = _resolver(route.dependant, route)
    if resolve is None:
        return None
    field = route.response_field
    json_response = route.response_class.value
    status_code = route.status_code

    async def handle(request: Request) -> Response:
        answer = await resolve(request, {})
        if isinstance(answer, Response):
            return answer
        content = await serialize_response(
            field=field,
            response_content=answer,
            include=route.response_model_include,
            exclude=route.response_model_exclude,
            by_alias=route.response_model_by_alias,
            exclude_unset=route.response_model_exclude_unset,
            exclude_defaults=route.response_model_exclude_defaults,
            exclude_none=route.response_model_exclude_none,
            dump_json=field is not None,
        )
        if field is not None:
            response = Response(content, status_code or 200, media_type="application/json")
        elif status_code is None:  # the response class's own default
            response = json_response(content)
        else:
            response = json_response(content, status_code)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        return response

    return handle


def _is_async_call(call: Any) -> bool:
    """An async function, or an instance with an async `__call__` (FastAPI's security schemes);
    not a class, a generator or a sync function (FastAPI would run that in a thread)."""
    if inspect.isclass(call):
        return False
    if inspect.iscoroutinefunction(call):
        return True
    return inspect.iscoroutinefunction(getattr(call, "__call__", None))  # noqa: B004


def _resolver(dependant: Dependant, route: APIRoute) -> _Resolver | None:
    """How to call `dependant.call` for a request, or None when it takes anything but the
    request, string path parameters and dependencies this can resolve too."""
    call = dependant.call
    if call is None or not _is_async_call(call):
        return None
    if (
        dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.websocket_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.own_oauth_scopes
        or dependant.concurrency is not None
    ):
        return None
    path_params: list[tuple[str, str]] = []
    for field in dependant.path_params:
        convertor = route.param_convertors.get(field.alias)
        if field.field_info.annotation is not str or field.field_info.metadata:
            return None
        if not isinstance(convertor, StringConvertor | PathConvertor):
            return None
        path_params.append((field.name, field.alias))
    # (argument name or None, cache key, use the cache, resolver) per dependency, in order.
    subs: list[tuple[str | None, tuple[Any, Any], bool, _Resolver]] = []
    for sub in dependant.dependencies:
        resolve_sub = _resolver(sub, route)
        if resolve_sub is None:
            return None
        subs.append((sub.name, (sub.call, sub.scope), sub.use_cache, resolve_sub))
    request_names = [
        name
        for name in (dependant.request_param_name, dependant.http_connection_param_name)
        if name is not None
    ]

    async def resolve(request: Request, cache: dict[Any, Any]) -> Any:
        kwargs: dict[str, Any] = {}
        for name, key, use_cache, resolve_sub in subs:
            if use_cache and key in cache:
                value = cache[key]
            else:
                value = await resolve_sub(request, cache)
                cache.setdefault(key, value)
            if name is not None:
                kwargs[name] = value
        if path_params:
            given = request.path_params
            for name, alias in path_params:
                kwargs[name] = given[alias]
        for name in request_names:
            kwargs[name] = request
        return await call(**kwargs)

    return resolve
