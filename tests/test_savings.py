"""Savings accounted per API key and per router: keys named in the config, each request's key name
in the request log (never the key), and ``routellm-serve report`` over a log whose costs are known,
with a negative saving where a dearer model answered."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import learning_setup
import pytest

from deployments.openai_http import IngressState
from deployments.service_app import service_app
from routing.config import AuthConfig, load_app_config
from routing.errors import Unauthorized
from routing.offline.commands.report import render, report_command, summarize
from routing.serving.auth import ApiKeys, named_key
from routing.serving.in_process import in_process_engine
from routing.serving.request_log import RequestRecord, read_request_log
from testing.apps import fake_pair_args
from testing.fake_upstream import FakeUpstream
from testing.local_server import serving

TEAM_A, TEAM_B, UNNAMED = "sk-team-a-1", "sk-team-b-1", "sk-unnamed-1"
STRONG_PRICE = {"input_per_million": 10, "output_per_million": 30}  # 5 in, 4 out: 170 µUSD an answer
WEAK_PRICE = {"input_per_million": 1, "output_per_million": 2}  # 13 µUSD an answer


def test_a_key_is_named_by_its_entry_or_by_its_digest(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# clients\nteam-a {TEAM_A}\n{UNNAMED}\n")
    keys = ApiKeys.load(AuthConfig(api_keys_file=str(keys_file), api_keys_env="KEYS"), {"KEYS": f"team-b {TEAM_B}"})
    unnamed = named_key(UNNAMED)[0]
    assert unnamed.startswith("key-") and UNNAMED not in unnamed
    assert [keys.check(f"Bearer {k}") for k in (TEAM_A, TEAM_B, UNNAMED)] == ["team-a", "team-b", unnamed]
    assert keys.check(None, TEAM_B) == "team-b"
    with pytest.raises(Unauthorized):
        keys.check("Bearer team-a")  # a name is not a key
    assert ApiKeys.load(AuthConfig(api_keys_env="KEYS"), {"KEYS": "ci replace-with-a-client-key"}).problem


@pytest.fixture
def served(strong: FakeUpstream, weak: FakeUpstream, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "requests"
    args = fake_pair_args(strong, weak, routers={"random": {"type": "random"}}, request_log={"directory": str(log)})
    args["upstreams"]["strong"]["price"], args["upstreams"]["weak"]["price"] = STRONG_PRICE, WEAK_PRICE
    engine = in_process_engine(load_app_config(args).resolve_env({}))
    keys = ApiKeys([f"team-a {TEAM_A}", f"team-b {TEAM_B}"])
    with serving(service_app(engine, IngressState(keys))) as url:
        yield url, log


def test_each_request_is_logged_under_its_keys_name_and_the_report_sums_per_key_and_router(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    url, log = served
    question = [{"role": "user", "content": "Name a prime."}]

    def ask(key: str, model: str, path: str = "/v1/chat/completions") -> None:
        body = {"model": model, "messages": question} | ({"max_tokens": 16} if path == "/v1/messages" else {})
        headers = {"x-api-key": key} if path == "/v1/messages" else {"authorization": f"Bearer {key}"}
        httpx.post(f"{url}{path}", json=body, headers=headers, timeout=30).raise_for_status()

    for model in ("router-random-0", "router-random-1", "router-random-1"):
        ask(TEAM_A, model)  # strong once, weak twice
    ask(TEAM_B, "router-random-1", "/v1/messages")
    ask(TEAM_B, "big")  # a model named directly: measured against the default candidates' most capable
    records = list(read_request_log(log))
    assert [r.key for r in records] == ["team-a"] * 3 + ["team-b"] * 2
    written = "".join(path.read_text() for path in log.glob("*.jsonl"))
    assert TEAM_A not in written and TEAM_B not in written  # names, never keys

    report = summarize(records)
    strong_usd, weak_usd = (5 * 10 + 4 * 30) / 1e6, (5 * 1 + 4 * 2) / 1e6
    team_a, team_b = report.keys["team-a"], report.keys["team-b"]
    assert (team_a.requests, team_a.answered_by) == (3, {"big": 1, "small": 2})
    assert team_a.spent_usd == pytest.approx(strong_usd + 2 * weak_usd)
    assert team_a.would_have_spent_usd == pytest.approx(3 * strong_usd)
    assert team_a.saved_usd == pytest.approx(2 * (strong_usd - weak_usd))
    assert team_b.saved_usd == pytest.approx(strong_usd - weak_usd)
    assert report.routers["random"].requests == 4 and report.routers["(no router)"].saved_usd == pytest.approx(0)
    assert report.total.saved_usd == pytest.approx(3 * (strong_usd - weak_usd))
    text = render(report)
    assert f"| team-a | 3 | small 67%, big 33% | 3 | {team_a.spent_usd:.6f} | {3 * strong_usd:.6f} | +" in text


def test_a_dearer_answer_is_a_negative_saving_and_the_cli_draws_the_report(tmp_path: Path) -> None:
    def record(at: float, key: str | None, answered_by: str, cost: float | None, saved: float | None) -> RequestRecord:
        return RequestRecord(time=at, model="router-mf", stream=False, router="mf", answered_by=answered_by,
                             cost_usd=cost, saved_usd=saved, key=key)  # fmt: skip

    log = tmp_path / "requests"
    log.mkdir()
    rows = [
        record(100.0, "team-a", "small", 0.001, 0.009),
        record(200.0, "team-a", "huge", 0.020, -0.010),  # a candidate dearer than the baseline answered
        record(300.0, None, "small", None, None),  # no price known: counted, not in the money
        record(900.0, "team-a", "small", 0.001, 0.009),  # after --until
    ]
    (log / "requests-host-1.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in rows))
    report = summarize(read_request_log(log), until=800)
    assert report.keys["team-a"].saved_usd == pytest.approx(-0.001) and report.keys["(open)"].priced == 0
    png = tmp_path / "savings.png"
    printed = subprocess.run(
        [sys.executable, "-m", "routing.offline.cli", "report", "--log", str(log), "--until", "800", "--png", str(png)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "| team-a | 2 | small 50%, huge 50% | 2 | 0.021000 | 0.020000 | -0.001000 | — |" in printed
    assert "| (open) | 1 | small 100% | 0 | — | — | — | — |" in printed
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run([sys.executable, "-m", "routing.offline.cli", "report", "--log", str(log), "--since", "soon"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "neither seconds since the epoch nor an ISO 8601 time" in bad.stderr


def test_the_report_shows_the_shadow_evaluations_verdicts_per_key_and_router(tmp_path: Path) -> None:
    log, learner = tmp_path / "requests", tmp_path / "learner"
    log.mkdir()
    (log / "requests-host-1.jsonl").write_text(
        RequestRecord(time=100.0, model="router-mf", stream=False, router="mf", answered_by="small", key="team-a")
        .model_dump_json() + "\n"
    )  # fmt: skip
    verdicts = learning_setup.verdicts(8, 2, start=100.0)
    (learner / "mf").mkdir(parents=True)
    (learner / "mf" / "shadow.ndjson").write_text("".join(v.model_dump_json() + "\n" for v in verdicts))
    printed = report_command(log, None, None, None, learner)
    assert "| team-a | 1 | small 100% | 0 | — | — | — | 80% (49%–94%) of 10 |" in printed
    assert "| mf | 1 | small 100% | 0 | — | — | — | 80% (49%–94%) of 10 |" in printed
    # Counted by the time of the request judged, like the requests themselves.
    assert "| team-a | 1 | small 100% | 0 | — | — | — | 100% (61%–100%) of 6 |" in report_command(
        log, None, 106.0, None, learner
    )
