"""Strong shares held on live traffic: the window's threshold, the decisions' payback, the config."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import yaml

from routing.config import load_app_config
from routing.routers.share_settings import ShareControl
from routing.serving.share_control import MAX_TRACKED_SHARES, LiveShares
from routing.settings import ConfigError


def uniform_pool(share: float) -> float:
    """A calibration table whose pool's scores were uniform: the threshold that sends ``share`` %."""
    return 1.0 - share / 100


def replay(
    shares: LiveShares,
    scores: np.ndarray,
    percent: float,
    batch: int = 8,
    table: Callable[[float], float] = uniform_pool,
) -> np.ndarray:
    """Routes ``scores`` in batches as a router does: each request at the window's threshold, or
    the table's for the aimed share while the window is too small, every decision counted, the
    batch's scores added after it."""
    strong = []
    for start in range(0, len(scores), batch):
        chunk = scores[start : start + batch]
        for score in chunk:
            live = shares.threshold(percent)
            strong.append(score >= (table(shares.aimed(percent)) if live is None else live))
            shares.decided(percent, strong[-1])
        shares.add_scores(chunk)
    return np.array(strong)


def block_shares(strong: np.ndarray, start: int, size: int = 200) -> list[float]:
    return [100 * float(strong[i : i + size].mean()) for i in range(start, len(strong) - size + 1, size)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_first_requests_and_every_block_after_them_hold_the_share(seed: int) -> None:
    # Traffic unlike the calibration pool: the table's 30 % threshold sends about 42 % of it up.
    scores = np.random.default_rng(seed).beta(5, 2, size=2000)
    assert 100 * np.mean(scores >= uniform_pool(30)) > 38
    strong = replay(LiveShares(ShareControl()), scores, 30)
    assert 100 * strong[:1000].mean() == pytest.approx(30, abs=1)
    for share in block_shares(strong, 200):
        assert share == pytest.approx(30, abs=2)


def test_while_the_window_fills_the_tables_threshold_follows_the_debt() -> None:
    """A replica's first requests (here 200 before the window takes over) hold the share too:
    the table's threshold is taken for the share moved by what the decisions owe."""
    scores = np.random.default_rng(3).beta(5, 2, size=400)
    at_the_table = replay(LiveShares(ShareControl(min_requests=200, payback_requests=None)), scores, 30)
    assert 100 * at_the_table[:200].mean() > 38
    paid_back = replay(LiveShares(ShareControl(min_requests=200)), scores, 30)
    assert 100 * paid_back[:200].mean() == pytest.approx(30, abs=2)
    assert 100 * paid_back[200:].mean() == pytest.approx(30, abs=2)


def test_a_quantile_alone_misses_blocks_that_the_payback_holds() -> None:
    scores = np.random.default_rng(7).beta(5, 2, size=2000)
    quantile_only = replay(LiveShares(ShareControl(payback_requests=None)), scores, 30)
    assert max(abs(s - 30) for s in block_shares(quantile_only, 200)) > 2  # binomial noise: ±3 per 200
    held = replay(LiveShares(ShareControl()), scores, 30)
    assert max(abs(s - 30) for s in block_shares(held, 200)) <= 2


def test_too_few_scores_keep_the_table_and_the_ends_are_fixed() -> None:
    shares = LiveShares(ShareControl(window_requests=10, min_requests=5))
    shares.add_scores([0.1, 0.2, 0.3, 0.4])
    assert shares.threshold(50) is None
    shares.add_scores([0.5, 0.6])
    assert shares.threshold(0) == 1.0
    assert shares.threshold(100) == pytest.approx(0.1)
    assert shares.threshold(50) == pytest.approx(0.4)  # the higher of the middle pair: 3 of 6 at or above


def test_the_window_keeps_the_latest_scores_by_count_and_by_time() -> None:
    now = [0.0]
    shares = LiveShares(ShareControl(window_requests=4, min_requests=2, window_seconds=60), clock=lambda: now[0])
    shares.add_scores([0.9, 0.9, 0.9, 0.9, 0.1, 0.2])
    assert shares.seen == 4 and shares.threshold(100) == pytest.approx(0.1)
    now[0] = 30.0
    shares.add_scores([0.5])
    now[0] = 61.0  # the first six are older than a minute now, the last is not
    assert shares.seen == 1 and shares.threshold(50) is None


def test_debts_are_kept_for_the_latest_shares_only() -> None:
    shares = LiveShares(ShareControl(window_requests=10, min_requests=2))
    for percent in range(MAX_TRACKED_SHARES + 10):
        shares.decided(float(percent), True)
    assert len(shares._owed) == MAX_TRACKED_SHARES
    assert float(MAX_TRACKED_SHARES + 9) in shares._owed and 0.0 not in shares._owed


def router_args(share_control: object) -> dict:
    upstream = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}
    return {
        "upstreams": {"strong": {**upstream, "model": "big"}, "weak": {**upstream, "model": "small"}},
        "routers": {"mf": {"type": "mf", "share_control": share_control}},
    }


def test_share_control_is_on_by_default_and_off_as_yaml_writes_it() -> None:
    on = load_app_config({**router_args(None), "routers": {"mf": {"type": "mf"}}})
    assert on.routers["mf"].share_control == ShareControl()
    off = yaml.safe_load("share_control: off")["share_control"]
    assert off is False  # YAML 1.1 reads a bare off as false
    assert load_app_config(router_args(off)).routers["mf"].share_control == "off"
    assert load_app_config(router_args("off")).routers["mf"].share_control == "off"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"window_requests": 100, "min_requests": 200}, "min_requests (200) must be at most window_requests (100)"),
        ({"window_requests": 1}, "window_requests"),
        ({"window_seconds": 0}, "window_seconds"),
        ({"payback_requests": -1}, "payback_requests"),
        ({"windows": 5}, "windows"),
        ("sometimes", "share_control"),
    ],
)
def test_bad_share_control_names_the_field(setting: object, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_app_config(router_args(setting))
    assert "routers.mf.share_control" in str(error.value) and message in str(error.value)
