"""The playground: a chat page at ``/playground`` that shows how each answer was routed.

The page (``routing/playground/``: plain HTML, CSS and JavaScript, loading nothing from outside
the service) calls the service's own API: ``GET /v1/models`` for the routers and
``POST /v1/chat/completions`` for the answers, whose ``x-route-*`` headers fill each answer's
badge. What the API does not say, it reads from ``GET /playground/settings``: the strong and weak
models with their prices, each router's defaults and whether it has a calibration table (a strong
share needs one), and whether the API wants a key. These routes are open, like ``/health``; the
key the page is given goes to ``/v1/`` only and is kept in the page's memory.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from deployments.openai_http import IngressState
from routing.routers.kind import RouterSettings
from routing.serving.engine import RoutingEngine
from routing.upstreams.config import Price

ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
}
# The page may load and call nothing but this service, whatever ends up in it.
HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
}


class PlaygroundModel(BaseModel):
    model: str = Field(description="the upstream's public name, as in a response's 'model'")
    price: Price | None = Field(description="USD per million tokens, when configured")


class PlaygroundRouter(BaseModel):
    type: str
    default_threshold: float | None = Field(description="router-<name>'s fixed threshold, when it has one")
    default_strong_percent: float | None = Field(description="router-<name>'s share of strong calls, when no threshold")
    calibrated: bool = Field(description="whether 'router-<name>-<percent>%' can be asked")


class PlaygroundSettings(BaseModel):
    strong: PlaygroundModel
    weak: PlaygroundModel
    routers: dict[str, PlaygroundRouter]
    auth_required: bool = Field(description="whether /v1/ wants 'Authorization: Bearer <key>'")

    @classmethod
    async def of(cls, engine: RoutingEngine, state: IngressState) -> PlaygroundSettings:
        config = engine.config
        ends = config.default_candidates
        strong, weak = config.upstreams[ends[-1]], config.upstreams[ends[0]]
        states = await engine.router_states()

        def described(name: str, router: RouterSettings) -> PlaygroundRouter:
            # A router that does not answer is shown with its configured defaults, uncalibrated.
            reported = states[name]
            defaults = router if isinstance(reported, str) else reported.defaults
            return PlaygroundRouter(
                type=router.type,
                default_threshold=defaults.default_threshold,
                default_strong_percent=defaults.strong_percent,
                calibrated=not isinstance(reported, str) and reported.calibrated,
            )

        return cls(
            strong=PlaygroundModel(model=strong.model, price=strong.price),
            weak=PlaygroundModel(model=weak.model, price=weak.price),
            routers={name: described(name, router) for name, router in config.routers.items()},
            auth_required=state.api_keys.enabled,
        )


@cache
def _asset(name: str) -> bytes:
    return (files("routing") / "playground" / name).read_bytes()


def _file(name: str) -> Response:
    return Response(_asset(name), media_type=ASSETS[name], headers=HEADERS)


def add_playground(app: FastAPI, engine: RoutingEngine, state: IngressState) -> None:
    """The page's routes on ``app``: the page, its script and style, and its settings."""

    @app.get("/playground", include_in_schema=False)
    async def playground_page() -> Response:
        # Its links are relative ('playground/playground.js', 'v1/models'), so the page works under
        # any route prefix.
        return _file("index.html")

    @app.get("/playground/settings", response_model=PlaygroundSettings)
    async def playground_settings() -> PlaygroundSettings:
        """What the playground page needs that the OpenAI API does not say."""
        return await PlaygroundSettings.of(engine, state)

    @app.get("/playground/{name}", include_in_schema=False)
    async def playground_asset(name: str) -> Response:
        if name not in ASSETS or name == "index.html":
            raise HTTPException(404, "Not Found")
        return _file(name)
