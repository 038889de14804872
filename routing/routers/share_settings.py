"""How a router holds ``router-<name>-<p>%`` to p % of live traffic: its ``share_control``
setting (what is done with it: :mod:`routing.serving.share_control`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from routing.settings import Strict


class ShareControl(Strict):
    """How a router holds ``router-<name>-<p>%`` to p % of live traffic."""

    window_requests: int = Field(default=2000, ge=2, description="the recent scores kept, at most")
    window_seconds: float | None = Field(default=None, gt=0, description="also forget scores older than this")
    # Until then the table's threshold for the aimed share decides; any of 20 to 100 held every
    # training source's blocks within 2 points (python -m bench.share_control), 20 the soonest.
    min_requests: int = Field(
        default=20, ge=1, description="scores seen before they replace the calibration table's thresholds"
    )
    payback_requests: float | None = Field(
        default=10, gt=0, description="the requests over which a share's realized shortfall or excess is paid back"
    )

    @model_validator(mode="after")
    def _fits(self) -> ShareControl:
        if self.min_requests > self.window_requests:
            raise ValueError(
                f"min_requests ({self.min_requests}) must be at most window_requests ({self.window_requests})"
            )
        return self


def _off(value: Any) -> Any:
    # YAML 1.1 (PyYAML) reads a bare `off` as false.
    return "off" if value is False else value


ShareControlSetting = Annotated[ShareControl | Literal["off"], BeforeValidator(_off)]
