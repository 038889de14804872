"""``routellm-serve report``: what routing spent and saved, from the request log, per API key (by
its name), per router and in total: requests, the share each model answered, what was spent,
what the routers' most capable candidates would have charged for the same tokens, and the
difference (negative where a dearer model answered), and where the learner's shadow evaluation
ran (``--learner``), the share of the judged requests whose cheaper answer was as good. Costs come
from the upstreams' ``price`` at the time of each answer; an answer without a known price is
counted, but not in the money."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from routing.offline.learning.shadow import SHADOW_FILE, ShadowVerdict, read_verdicts, wilson
from routing.serving.request_log import RequestRecord, read_request_log

OPEN, DIRECT = "(open)", "(no router)"  # requests without a key (no auth), or naming a model


@dataclass
class Totals:
    requests: int = 0
    answered_by: Counter[str] = field(default_factory=Counter)
    priced: int = 0
    spent_usd: float = 0.0
    saved_usd: float = 0.0
    judged: int = 0
    as_good: int = 0

    @property
    def would_have_spent_usd(self) -> float:
        return self.spent_usd + self.saved_usd

    def add(self, record: RequestRecord) -> None:
        self.requests += 1
        self.answered_by[record.answered_by] += 1
        if record.cost_usd is not None and record.saved_usd is not None:
            self.priced += 1
            self.spent_usd += record.cost_usd
            self.saved_usd += record.saved_usd

    def judge(self, verdict: ShadowVerdict) -> None:
        if verdict.as_good is not None:
            self.judged += 1
            self.as_good += int(verdict.as_good)


@dataclass
class Report:
    """Totals per key name, per router and over all, for the records between ``since`` and ``until``."""

    since: float | None
    until: float | None
    keys: dict[str, Totals] = field(default_factory=dict)
    routers: dict[str, Totals] = field(default_factory=dict)
    total: Totals = field(default_factory=Totals)

    def totals_of(self, key: str | None, router: str | None) -> tuple[Totals, Totals, Totals]:
        return (
            self.keys.setdefault(key or OPEN, Totals()),
            self.routers.setdefault(router or DIRECT, Totals()),
            self.total,
        )


def summarize(
    records: Iterable[RequestRecord],
    since: float | None = None,
    until: float | None = None,
    verdicts: Iterable[ShadowVerdict] = (),
) -> Report:
    """``verdicts``: the shadow evaluation's, counted by the time of the request they judged."""
    report = Report(since, until)

    def within(at: float) -> bool:
        return (since is None or at >= since) and (until is None or at < until)

    for record in records:
        if within(record.time):
            for totals in report.totals_of(record.key, record.router):
                totals.add(record)
    for verdict in verdicts:
        if within(verdict.request_time):
            for totals in report.totals_of(verdict.key, verdict.router):
                totals.judge(verdict)
    return report


def render(report: Report) -> str:
    """The report as Markdown tables."""
    span = " to ".join(_when(t) for t in (report.since, report.until)) if report.since or report.until else "all"
    lines = [f"Requests in the log: {report.total.requests} ({span})", ""]
    for title, groups in (("API key", report.keys), ("router", report.routers), ("", {"total": report.total})):
        lines += [
            f"| {title or 'all'} | requests | answered by | priced | spent, USD | would have spent, USD | saved, USD "
            "| cheaper answer as good (shadow) |",
            "|---|---:|---|---:|---:|---:|---:|---:|",
        ]
        lines += [_row(name, totals) for name, totals in sorted(groups.items())]
        lines.append("")
    return "\n".join(lines)


def _row(name: str, totals: Totals) -> str:
    shares = ", ".join(f"{model} {count / totals.requests:.0%}" for model, count in totals.answered_by.most_common())
    saved = f"{totals.saved_usd:+.6f}" if totals.priced else "—"
    money = (f"{totals.spent_usd:.6f}", f"{totals.would_have_spent_usd:.6f}") if totals.priced else ("—", "—")
    verdict = "—"
    if totals.judged:
        share = wilson(totals.judged, totals.as_good)
        verdict = f"{share.share:.0%} ({share.low:.0%}–{share.high:.0%}) of {totals.judged}"
    return (
        f"| {name} | {totals.requests} | {shares} | {totals.priced} | {money[0]} | {money[1]} | {saved} | {verdict} |"
    )


def _when(timestamp: float | None) -> str:
    return "…" if timestamp is None else datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def plot(report: Report, path: Path) -> None:
    """Spent against would-have-spent, per key and per router, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), squeeze=False)
    for axis, (title, groups) in zip(
        axes[0], (("per API key", report.keys), ("per router", report.routers)), strict=True
    ):
        names = sorted(groups)
        spots = range(len(names))
        axis.bar(
            [x - 0.2 for x in spots], [groups[n].would_have_spent_usd for n in names], 0.4, label="would have spent"
        )
        axis.bar([x + 0.2 for x in spots], [groups[n].spent_usd for n in names], 0.4, label="spent")
        axis.set_xticks(list(spots), names, rotation=20, ha="right")
        axis.set_ylabel("USD")
        axis.set_title(title)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def parse_time(value: str) -> float:
    """Seconds since the epoch, or an ISO 8601 date or time (local time unless it names a zone)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ValueError(f"'{value}' is neither seconds since the epoch nor an ISO 8601 time") from None


def report_command(
    log: Path, since: float | None, until: float | None, png: Path | None, learner: Path | None = None
) -> str:
    if not log.is_dir():
        raise FileNotFoundError(f"--log: no directory {log} (the request_log.directory of the service's config)")
    if learner is not None and not learner.is_dir():
        raise FileNotFoundError(f"--learner: no directory {learner} (the learner.directory of the service's config)")
    verdicts = [v for path in sorted(learner.glob(f"*/{SHADOW_FILE}")) for v in read_verdicts(path)] if learner else []
    report = summarize(read_request_log(log), since, until, verdicts)
    if png is not None:
        plot(report, png)
    return render(report)
