"""How fast the learner learns a user's traffic: ``python -m bench.learning``.

A benchmark's prompts (MMLU, GSM8K, MT Bench, or the chat prompts of the training source
``arena-bench``, whose outcomes are GPT-4's grades of the two models) are replayed as traffic
through the running service (fake upstreams, and a fake judge that answers from the
benchmark's own outcome columns, so labels are free and exact).
Each round of traffic starts a learner round; after it, the serving router (``router-mf-0.5``,
asked through ``/v1/route``) is measured on a fixed slice of the benchmark that is never sent as
traffic. Printed per benchmark and sampling strategy: APGR (with a 95 % bootstrap interval)
against the labels used, beside random, prompt length and optimal on the same slice, the
median latency of each round's chat requests, and that of probe requests while no round runs
beside theirs while the round runs (:mod:`bench.learning_probe`); written to ``--out`` as
``<benchmark>.json``, ``.md`` and ``.png``. With ``--shadow F``, each sampling is replayed without
and then with shadow evaluation of a share F of the cheaper model's answers (the chat traffic at
``router-mf-50%``, so that the cheaper model answers half of it; the request log keeps the
answers, so a verdict asks only the strong model again; the judge priced, so that its spend
counts against the budget): its "as good" share and interval are set beside the truth over every request the
cheaper model answered, with what it spent.

    python -m bench.learning --out docs/learning      # mmlu, gsm8k and arena-bench
    python -m bench.learning --benchmark gsm8k --sampling uniform --rounds 3
    python -m bench.learning --benchmark gsm8k --sampling active --rounds 2 --shadow 0.3 --out docs/learning/shadow
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import learning_probe
from routing.offline.evaluation.benchmark import Benchmark, read_benchmark
from routing.offline.evaluation.labels import labels_benchmarks
from routing.offline.evaluation.metrics import apgr, optimal_curve, random_baseline
from routing.offline.learning.challenge import measure
from routing.resources import DEFAULT_STRONG, DEFAULT_WEAK
from routing.serving.request_log import read_request_log
from testing.cluster import free_port
from testing.fake_upstream import FakeUpstream

EVAL = Path("data/eval")
# Chat sources replayed from the training data: their judge's grades of the two models are the outcomes.
CHAT = {"arena-bench": Path("data/train/arena-bench-v1.judge_scores.jsonl.gz")}
CONCURRENCY = 16


@dataclass
class Point:
    round: int
    labels: int
    champion_version: int
    apgr: float | None
    low: float | None
    high: float | None
    strong_share: float
    outcome: str
    traffic_p50_ms: float | None = None  # the round's chat requests, as their clients saw them
    probe: learning_probe.Probed | None = None  # requests served before and while the round ran


@dataclass(frozen=True)
class Split:
    """The benchmark's prompts replayed as traffic, and the slice the serving router is measured on."""

    traffic: list[str]
    held_out: Benchmark
    winners: dict[str, str]


def split(benchmark: Benchmark, held_out_share: float, held_out_max: int, traffic_max: int, seed: int) -> Split:
    strong, weak = benchmark.pair(DEFAULT_STRONG, DEFAULT_WEAK)
    order = np.random.default_rng(seed).permutation(len(benchmark.prompts))
    size = min(int(round(held_out_share * len(order))), held_out_max)
    held, rest = order[:size], order[size:][:traffic_max]
    held_out = Benchmark(
        f"{benchmark.name} (held out)",
        [benchmark.ids[i] for i in held],
        [benchmark.prompts[i] for i in held],
        {"strong": strong[held], "weak": weak[held]},
    )
    winners = {
        p: "strong" if s > w else "weak" if s < w else "tie"
        for p, s, w in zip(benchmark.prompts, strong, weak, strict=True)
    }
    return Split([benchmark.prompts[i] for i in rest], held_out, winners)


def load(ref: str) -> Benchmark:
    if ref in CHAT:
        graded = labels_benchmarks(CHAT[ref], DEFAULT_STRONG, DEFAULT_WEAK)[0]
        return Benchmark(ref, graded.ids, graded.prompts, graded.quality)
    return read_benchmark(Path(ref) if Path(ref).is_file() else EVAL / f"{ref}.jsonl.gz")


def baselines(held_out: Benchmark) -> dict[str, float]:
    """Random (mean of 10 draws), prompt length and optimal on the held-out slice."""
    strong, weak = held_out.quality["strong"], held_out.quality["weak"]
    length = measure(np.array([len(p) for p in held_out.prompts], dtype=float), strong, weak, 0.5, 10, 0).apgr
    best = apgr(optimal_curve(strong, weak), float(weak.mean()), float(strong.mean()))
    return {"random": float(random_baseline(strong, weak).apgrs.mean()), "prompt length": length, "optimal": best}


@contextmanager
def cluster() -> Iterator[str]:
    import ray
    from ray import serve

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield f"http://127.0.0.1:{port}"
    finally:
        ray.shutdown()


def app_args(
    upstreams: dict[str, FakeUpstream],
    state: Path,
    sampling: str,
    per_round: int,
    traffic: int,
    min_test: int,
    shadow: float | None = None,
) -> dict[str, Any]:
    args = {
        "upstreams": {
            key: {"backend": "openai", "model": key, "base_url": upstreams[key].base_url} for key in ("strong", "weak")
        },
        "routers": {"mf": {"type": "mf"}, learning_probe.PROBE_ROUTER: {"type": "mf"}},
        "request_log": {"directory": str(state / "requests"), "answers": True},
        # A request that falls back is not the router's: it would not count towards the round.
        "fallback": {"routing_timeout_s": 120},
        "learner": {
            "router": "mf",
            "directory": str(state / "learner"),
            "judge": {"model": "oracle", "base_url": upstreams["judge"].base_url},
            "budget_usd_per_day": 1.0,
            "sampling": sampling,
            "labels_per_round": per_round,
            "every_requests": traffic,
            "min_test_labels": min_test,
            "check_s": 1,
        },
    }
    if shadow is not None:  # the judge priced, so that the spend is counted against the budget
        args["learner"] |= {"shadow": {"fraction": shadow}}
        args["learner"]["judge"] |= {"price": {"input_per_million": 0.1, "output_per_million": 0.1}}
    return args


async def _post_all(
    url: str, path: str, prompts: list[str], model: str = "router-mf-0.5"
) -> list[tuple[dict[str, Any], float]]:
    """Each answer, and the seconds it took."""
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:

        async def one(prompt: str) -> tuple[dict[str, Any], float]:
            body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
            async with limit:
                began = time.perf_counter()
                answer = (await client.post(path, json=body)).raise_for_status().json()
                return answer, time.perf_counter() - began

        return await asyncio.gather(*(one(p) for p in prompts))


def serving_scores(url: str, prompts: list[str]) -> np.ndarray:
    return np.array([r["score"] for r, _ in asyncio.run(_post_all(url, "/v1/route", prompts))])


def status(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/health/learner", timeout=30).raise_for_status().json()


def run(
    url: str,
    data: Split,
    sampling: str,
    rounds: int,
    max_labels: int,
    state: Path,
    min_test: int,
    shadow: float | None = None,
) -> tuple[list[Point], dict[str, Any] | None]:
    from ray import serve

    from graph import build_app

    per_round_traffic = len(data.traffic) // rounds
    per_round = min(max_labels // rounds, int(0.6 * per_round_traffic))
    upstreams = {name: FakeUpstream(name) for name in ("strong", "weak", "judge")}
    try:
        upstreams["strong"].behave("ok", answer="per_prompt", record=False)
        upstreams["weak"].behave("ok", answer="per_prompt", record=False)
        upstreams["judge"].behave("ok", answer="oracle", winners=data.winners, record=False)
        args = app_args(upstreams, state, sampling, per_round, per_round_traffic, min_test, shadow)
        serve.run(build_app(args), name="router", route_prefix="/")
        points = [_measured(url, data, 0, {"train_labels": 0, "test_labels": 0, "champion_version": 0}, "shipped")]
        probes = data.held_out.prompts[: 4 * learning_probe.CONCURRENCY]
        for number in range(1, rounds + 1):
            traffic = data.traffic[(number - 1) * per_round_traffic :][:per_round_traffic]
            at_idle = learning_probe.idle(url, probes)
            # Shadowed traffic goes at a share, so that the cheaper model answers half of it.
            model = "router-mf-50%" if shadow else "router-mf-0.5"
            answered = asyncio.run(_post_all(url, "/v1/chat/completions", traffic, model))
            p50_ms = round(1000 * float(np.median([seconds for _, seconds in answered])), 1)
            in_round = learning_probe.until(url, probes, lambda n=number: status(url).get("rounds", 0) >= n)
            current = status(url)
            time.sleep(3)  # the Router replica follows a promotion within CHAMPION_POLL_S
            point = _measured(url, data, number, current, current["last_round"]["outcome"], p50_ms)
            points.append(replace(point, probe=learning_probe.probed(at_idle, in_round)))
            print(f"  {sampling} round {number}: {asdict(points[-1])}", flush=True)
        return points, (shadow_report(status(url), state / "requests", data.winners) if shadow else None)
    finally:
        for server in upstreams.values():
            server.stop()


def shadow_report(current: dict[str, Any], log: Path, winners: dict[str, str]) -> dict[str, Any]:
    """The shadow evaluation's "as good" share against the truth over every cheaper answer: the
    share of the requests the weak model answered whose outcome was not a strong win."""
    cheaper = [r for r in read_request_log(log) if r.router == "mf" and r.answered_by == "weak" and r.messages]
    truth = float(np.mean([winners[r.messages[-1].content] != "strong" for r in cheaper])) if cheaper else None
    summary = current["shadow"]
    return {
        "fraction": summary["fraction"],
        "cheaper_answers": len(cheaper),
        **summary["by_router"].get("mf", {"judged": 0, "as_good": 0, "share": None, "low": None, "high": None}),
        "truth": truth,
        "spent_usd": current["spent_today_usd"],
        "budget_usd": current["budget_usd_per_day"],
    }


def _measured(
    url: str, data: Split, number: int, current: dict[str, Any], outcome: str, p50_ms: float | None = None
) -> Point:
    scores = serving_scores(url, data.held_out.prompts)
    measured = measure(scores, data.held_out.quality["strong"], data.held_out.quality["weak"], 0.5, 1000, number)
    labels = current["train_labels"] + current["test_labels"]
    return Point(
        number, labels, current["champion_version"], measured.apgr, measured.low, measured.high,
        measured.strong_share, outcome, p50_ms,
    )  # fmt: skip


def plot(name: str, found: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for sampling, points in found["runs"].items():
        xs = [p["labels"] for p in points if p["apgr"] is not None]
        ax.errorbar(
            xs,
            [p["apgr"] for p in points if p["apgr"] is not None],
            yerr=np.array([[p["apgr"] - p["low"], p["high"] - p["apgr"]] for p in points if p["apgr"] is not None]).T,
            marker="o",
            capsize=3,
            label=f"mf, {sampling}",
        )
    for label, value in found["baselines"].items():
        if value is not None and label != "optimal":
            ax.axhline(value, linestyle="--", linewidth=1, color="grey" if label == "random" else "tan", label=label)
    ax.set_xlabel("own labels used")
    ax.set_ylabel(f"APGR on {found['held_out']} held-out items")
    ax.set_title(f"{name}: the serving router as the learner learns")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--benchmark", action="append", help="mmlu, gsm8k, mt_bench, arena-bench or a benchmark file (repeatable)"
    )
    parser.add_argument("--sampling", action="append", choices=["active", "uniform"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-labels", type=int, default=1000)
    parser.add_argument("--held-out-share", type=float, default=0.3)
    parser.add_argument("--held-out-max", type=int, default=1000)
    parser.add_argument("--traffic-max", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--shadow", type=float, help="replay with shadow evaluation of this fraction of the cheaper answers"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with cluster() as url, tempfile.TemporaryDirectory() as work:
        for ref in args.benchmark or ["mmlu", "gsm8k", "arena-bench"]:
            benchmark = load(ref)
            data = split(benchmark, args.held_out_share, args.held_out_max, args.traffic_max, args.seed)
            # A slice of a small benchmark cannot hold 30 test labels; it promotes on fewer.
            min_test = min(30, max(5, len(data.traffic) // 10))
            found: dict[str, Any] = {
                "held_out": len(data.held_out.prompts),
                "traffic": len(data.traffic),
                "min_test_labels": min_test,
                "baselines": baselines(data.held_out),
                "runs": {},
                "shadow": {},
            }
            print(f"{benchmark.name}: {found['traffic']} prompts as traffic, {found['held_out']} held out", flush=True)
            for sampling in args.sampling or ["active", "uniform"]:
                for shadow in (None, args.shadow) if args.shadow else (None,):
                    name = sampling if shadow is None else f"{sampling}, shadow {shadow:g}"
                    state = Path(work) / f"{benchmark.name}-{name}"
                    points, report = run(url, data, sampling, args.rounds, args.max_labels, state, min_test, shadow)
                    found["runs"][name] = [asdict(p) for p in points]
                    if report is not None:
                        found["shadow"][name] = report
            print(table(benchmark.name, found), flush=True)
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / f"{benchmark.name}.json").write_text(json.dumps(found, indent=2) + "\n")
                (args.out / f"{benchmark.name}.md").write_text(table(benchmark.name, found))
                plot(benchmark.name, found, args.out)
                print(f"wrote {args.out}/{benchmark.name}.json, .md and .png", flush=True)


def table(name: str, found: dict[str, Any]) -> str:
    lines = [
        f"### {name}: {found['traffic']} prompts replayed, APGR on {found['held_out']} held-out items",
        "",
        "| router | own labels | APGR (95% interval) | strong share at 0.5 | traffic p50, ms "
        "| probe p50 idle / in the round, ms (probes in the round, failed) | round outcome |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for label, value in found["baselines"].items():
        lines.append(f"| {label} | – | {_number(value)} | – | – | – | – |")
    for sampling, points in found["runs"].items():
        for p in points:
            interval = f" ({p['low']:.3f}–{p['high']:.3f})" if p["low"] is not None else ""
            p50 = "–" if p.get("traffic_p50_ms") is None else f"{p['traffic_p50_ms']:.1f}"
            lines.append(
                f"| mf v{p['champion_version']}, {sampling} | {p['labels']} | {_number(p['apgr'])}{interval} | "
                f"{100 * p['strong_share']:.0f}% | {p50} | {_probed(p.get('probe'))} | {p['outcome']} |"
            )
    for name, r in found.get("shadow", {}).items():
        judged = f"{r['judged']} of the {r['cheaper_answers']} cheaper answers judged"
        if r["share"] is None or r["truth"] is None:
            lines += ["", f"Shadow evaluation ({name}): {judged}."]
            continue
        inside = "inside" if r["low"] <= r["truth"] <= r["high"] else "outside"
        lines += [
            "",
            f"Shadow evaluation ({name}): {judged}; as good {r['share']:.1%} ({r['low']:.1%}–{r['high']:.1%}), "
            f"against {r['truth']:.1%} over every cheaper answer ({inside} the interval); spent "
            f"${r['spent_usd']:.6f} of the day's ${r['budget_usd']:g}.",
        ]
    return "\n".join(lines) + "\n"


def _probed(probe: dict[str, Any] | None) -> str:
    if probe is None:
        return "–"
    idle, in_round = (_number(probe[k], ".1f") for k in ("idle_p50_ms", "round_p50_ms"))
    return f"{idle} / {in_round} ({probe['round_probes']}, {probe['failed']})"


def _number(value: float | None, form: str = ".3f") -> str:
    return "–" if value is None else format(value, form)


if __name__ == "__main__":
    main()
