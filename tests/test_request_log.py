"""The opt-in request log, written by the engine as it answers, read back for calibrate and label."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from routing.config import load_app_config
from routing.offline.commands.prompts import read_prompts
from routing.offline.data.files import DataFileError
from routing.protocol import ChatCompletionRequest
from routing.serving.engine import RoutingEngine
from routing.serving.in_process import in_process_engine
from routing.serving.request_log import RequestRecord, read_request_log
from routing.settings import ConfigError
from testing.apps import fake_pair_args
from testing.fake_upstream import FakeUpstream


def redact_emails(record: RequestRecord) -> RequestRecord | None:
    """A redaction hook for the tests: masks one address, leaves out records that ask for it."""
    if record.messages and any("forget me" in m.content for m in record.messages):
        return None
    for message in record.messages or []:
        message.content = message.content.replace("ann@example.com", "<email>")
    return record


def engine_logging(strong: FakeUpstream, weak: FakeUpstream, directory: Path, **log: Any) -> RoutingEngine:
    args = fake_pair_args(strong, weak, request_log={"directory": str(directory), **log})
    args["upstreams"]["strong"]["price"] = {"input_per_million": 10, "output_per_million": 30}
    args["upstreams"]["weak"]["price"] = {"input_per_million": 1, "output_per_million": 2}
    return in_process_engine(load_app_config(args).resolve_env({}))


async def ask(engine: RoutingEngine, model: str, text: str, stream: bool = False) -> None:
    request = ChatCompletionRequest.model_validate(
        {"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}
        | ({"stream_options": {"include_usage": True}} if stream else {})
    )
    if not stream:
        await engine.complete(request)
        return
    _, chunks = await engine.stream(request)
    async for _ in chunks:
        pass


def test_nothing_is_written_unless_the_log_is_configured(strong: FakeUpstream, weak: FakeUpstream) -> None:
    engine = in_process_engine(load_app_config(fake_pair_args(strong, weak)).resolve_env({}))
    assert engine.answers.request_log is None


def test_each_answer_is_recorded_with_its_decision_and_usage(
    strong: FakeUpstream, weak: FakeUpstream, tmp_path: Path
) -> None:
    engine = engine_logging(strong, weak, tmp_path)

    async def scenario() -> None:
        await ask(engine, "router-random-0", "first question")
        await ask(engine, "router-random-1", "second question", stream=True)
        strong.behave("status", status=500)
        await ask(engine, "router-random-0", "third question")
        await ask(engine, "small", "fourth question")

    asyncio.run(scenario())
    records = list(read_request_log(tmp_path))
    assert [r.messages[0].content for r in records if r.messages] == [
        "first question",
        "second question",
        "third question",
        "fourth question",
    ]
    first, second, third, fourth = records
    assert (first.router, first.threshold, first.target, first.answered_by) == ("random", 0.0, "big", "big")
    assert (first.prompt_tokens, first.completion_tokens) == (5, 4)
    assert first.cost_usd == pytest.approx((5 * 10 + 4 * 30) / 1e6)
    assert second.stream and second.answered_by == "small" and second.completion_tokens == 4
    assert (third.target, third.answered_by, third.fallback) == ("big", "small", "upstream_error")
    assert fourth.router is None and fourth.answered_by == "small"
    assert all(r.answer is None for r in records)  # answers are kept only when asked for


def test_prompts_can_be_left_out_and_records_redacted(strong: FakeUpstream, weak: FakeUpstream, tmp_path: Path) -> None:
    without = engine_logging(strong, weak, tmp_path / "without", prompts=False)
    asyncio.run(ask(without, "router-random-0", "my address is ann@example.com"))
    (record,) = read_request_log(tmp_path / "without")
    assert record.messages is None and record.answered_by == "big"

    redacted = engine_logging(strong, weak, tmp_path / "redacted", redact="test_request_log:redact_emails")

    async def scenario() -> None:
        await ask(redacted, "router-random-0", "my address is ann@example.com")
        await ask(redacted, "router-random-0", "forget me")

    asyncio.run(scenario())
    (record,) = read_request_log(tmp_path / "redacted")
    assert record.messages is not None and record.messages[0].content == "my address is <email>"
    assert "ann@example.com" not in "".join(p.read_text() for p in (tmp_path / "redacted").iterdir())


def test_parquet_files_hold_full_segments_and_the_rest_waits_in_json_lines(
    strong: FakeUpstream, weak: FakeUpstream, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    strong.behave("ok", chunks=3)
    engine = engine_logging(strong, weak, tmp_path, format="parquet", rows_per_file=2, answers=True)
    questions = [f"question {i}" for i in range(5)]

    async def scenario() -> None:
        for i, question in enumerate(questions):
            await ask(engine, "router-random-0", question, stream=i == 3)
        await engine.aclose()  # full segments are converted in the background; closing waits for them

    asyncio.run(scenario())
    parquet = sorted(tmp_path.glob("*.parquet"))
    waiting = sorted(tmp_path.glob("*.jsonl"))
    assert [p.name[-14:] for p in parquet] == ["000000.parquet", "000001.parquet"]
    assert [p.name[-12:] for p in waiting] == ["000002.jsonl"] and not list(tmp_path.glob("*.partial"))
    # Any Parquet reader sees the records as columns.
    table = pq.read_table(parquet[1])
    assert table.column("stream").to_pylist() == [False, True]
    assert table.column("messages").to_pylist()[0] == [{"role": "user", "content": "question 2"}]
    assert table.column("cost_usd").to_pylist()[0] == pytest.approx((5 * 10 + 4 * 30) / 1e6)
    records = list(read_request_log(tmp_path))
    assert [r.messages[0].content for r in records if r.messages] == questions
    assert records[3].stream and records[0].answered_by == "big"
    # Every field a JSON line holds survives the conversion: the answers kept (plain and streamed
    # in three chunks), the conversation's fields and the key's name.
    assert [r.answer for r in records] == [f"strong answer #{i}" for i in range(1, 6)]
    assert set(RequestRecord.model_fields) == set(table.column_names)

    # A crash between writing a Parquet file and removing its segment: each record read once.
    (tmp_path / parquet[0].name.replace(".parquet", ".jsonl")).write_text(
        "".join(r.model_dump_json() + "\n" for r in records[:2])
    )
    assert [r.messages[0].content for r in read_request_log(tmp_path) if r.messages] == questions


def test_a_line_cut_short_is_skipped_on_reading(strong: FakeUpstream, weak: FakeUpstream, tmp_path: Path) -> None:
    engine = engine_logging(strong, weak, tmp_path)
    asyncio.run(ask(engine, "router-random-0", "kept"))
    assert engine.answers.request_log is not None
    with engine.answers.request_log.path.open("a") as log:
        log.write('{"time": 1.0, "model": "router-ran')
    assert [r.messages[0].content for r in read_request_log(tmp_path) if r.messages] == ["kept"]


def test_bad_request_log_settings_name_the_field(strong: FakeUpstream, weak: FakeUpstream, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="request_log.redact"):
        load_app_config(fake_pair_args(strong, weak, request_log={"directory": str(tmp_path), "redact": "no colon"}))
    with pytest.raises(ConfigError, match="request_log.redact: cannot load 'nowhere:nothing'"):
        engine_logging(strong, weak, tmp_path, redact="nowhere:nothing")


def test_calibrate_reads_the_routed_turns_of_a_request_log(
    strong: FakeUpstream, weak: FakeUpstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from routing.offline.cli import main as cli

    engine = engine_logging(strong, weak, tmp_path / "log")
    questions = [f"question number {n} about {topic}" for n, topic in enumerate(["maths", "poems", "code"] * 7)]

    async def traffic() -> None:
        for question in questions:
            request = ChatCompletionRequest.model_validate(
                {
                    "model": "router-random-0.5",
                    "messages": [
                        {"role": "user", "content": "an earlier turn"},
                        {"role": "assistant", "content": "an earlier answer"},
                        {"role": "user", "content": question},
                    ],
                }
            )
            await engine.complete(request)

    asyncio.run(traffic())
    assert read_prompts(tmp_path / "log") == questions
    cli(["calibrate", "--router", "mf", "--prompts", str(tmp_path / "log"), "--strong-percent", "30"])
    assert f"% of {len(questions)} prompts to the strong model (asked 30%)" in capsys.readouterr().out

    quiet = engine_logging(strong, weak, tmp_path / "quiet", prompts=False)
    asyncio.run(ask(quiet, "router-random-0", "not kept"))
    with pytest.raises(DataFileError, match="no request-log records with messages"):
        read_prompts(tmp_path / "quiet")


def test_a_failing_disk_costs_the_record_never_the_answer(
    strong: FakeUpstream, weak: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The log's file is a device that is always full: every write fails with ENOSPC.
    (tmp_path / f"requests-{socket.gethostname()}-{os.getpid()}.jsonl").symlink_to("/dev/full")
    engine = engine_logging(strong, weak, tmp_path)

    async def scenario() -> None:
        for n in range(3):
            outcome, completion = await engine.complete(
                ChatCompletionRequest.model_validate(
                    {"model": "router-random-0", "messages": [{"role": "user", "content": f"question {n}"}]}
                )
            )
            assert completion.choices[0].message.content == f"strong answer #{n + 1}"
        await engine.aclose()

    with caplog.at_level(logging.WARNING, logger="routing.serving.request_log"):
        asyncio.run(scenario())
    assert "No space left on device" in caplog.text


CRASHING_SERVICE = """
import asyncio, json, os, signal, sys
from routing.config import load_app_config
from routing.serving.in_process import in_process_engine
from routing.protocol import ChatCompletionRequest

engine = in_process_engine(load_app_config(json.loads(sys.argv[1])).resolve_env({}))

async def answer(n):
    request = {"model": "router-random-0", "messages": [{"role": "user", "content": f"question {n}"}]}
    await engine.complete(ChatCompletionRequest.model_validate(request))

async def main():
    await asyncio.gather(*(answer(n) for n in range(40)))
    os.kill(os.getpid(), signal.SIGKILL)  # dies the moment the last answer is given

asyncio.run(main())
"""


def test_every_answered_request_is_on_disk_when_the_process_dies_at_once(
    strong: FakeUpstream, weak: FakeUpstream, tmp_path: Path
) -> None:
    args = fake_pair_args(strong, weak, request_log={"directory": str(tmp_path)})
    died = subprocess.run(
        [sys.executable, "-c", CRASHING_SERVICE, json.dumps(args)], capture_output=True, text=True, timeout=120
    )
    assert died.returncode == -signal.SIGKILL, died.stderr
    logged = sorted(r.messages[0].content for r in read_request_log(tmp_path) if r.messages)
    assert logged == sorted(f"question {n}" for n in range(40))
