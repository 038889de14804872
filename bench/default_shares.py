"""``router-<name>`` for every shipped router, through ``/v1/route`` of a running graph, on prompts
that are not the calibration pool: does each router send its default share (50 %) to the most
capable candidate, over the first 1,000 requests and in every block of 200 after the first 200?

    python -m bench.default_shares --prompts data/eval/mmlu.jsonl.gz --out docs/shares/mmlu.md
    python -m bench.default_shares --prompts ../shared/data/routerbench-routerdc --out docs/shares/routerbench.md

The graph is ``serve_config.all_routers.yaml`` (every shipped router, its share control as
shipped) on a private cluster, its upstreams on an address nothing answers (``/v1/route`` calls
no model). Each router gets the same ``--count`` prompts, drawn with a fixed seed from the unique
prompts of ``--prompts`` (files or folders of JSONL, CSV or Parquet with a ``prompt`` column),
8 requests in flight, as a busy client sends them. Writes a markdown table (``--out``) and the
per-block shares beside it as JSON.
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from pydantic import BaseModel

from bench.report import write_table
from routing.offline.commands.prompts import read_prompts
from routing.offline.data.files import data_files
from routing.routers.kind import DEFAULT_STRONG_PERCENT
from testing.apps import shipped_config
from testing.cluster import deployed

CONFIG = "serve_config.all_routers.yaml"
FIRST, BLOCK, TOLERANCE = 1000, 200, 5.0
IN_FLIGHT = 8
NOBODY = "http://127.0.0.1:9/v1"  # the discard port: /v1/route never calls an upstream


class RouterShares(BaseModel):
    router: str
    first_1000_percent: float
    blocks_after_first_200_percent: list[float]

    @property
    def worst_points_off(self) -> float:
        return max(abs(b - DEFAULT_STRONG_PERCENT) for b in self.blocks_after_first_200_percent)

    @property
    def met(self) -> bool:
        return abs(self.first_1000_percent - DEFAULT_STRONG_PERCENT) <= TOLERANCE and self.worst_points_off <= TOLERANCE


def sample(refs: list[str], count: int) -> list[str]:
    prompts = [prompt for ref in refs for path in data_files(ref) for prompt in read_prompts(path)]
    unique = list(dict.fromkeys(prompts))
    if len(unique) < count:
        raise SystemExit(f"--prompts: {len(unique)} unique prompts, {count} needed")
    return [unique[i] for i in np.random.default_rng(0).permutation(len(unique))[:count]]


def shares(url: str, router: str, prompts: list[str]) -> RouterShares:
    def route(prompt: str) -> bool:
        body = {"model": f"router-{router}", "messages": [{"role": "user", "content": prompt}]}
        decision = httpx.post(f"{url}/v1/route", json=body, timeout=120).raise_for_status().json()
        return decision["target"] == "strong"

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        strong = np.array(list(pool.map(route, prompts)))
    blocks = [100 * strong[i : i + BLOCK].mean() for i in range(BLOCK, len(strong) - BLOCK + 1, BLOCK)]
    return RouterShares(
        router=router, first_1000_percent=100 * strong[:FIRST].mean(), blocks_after_first_200_percent=blocks
    )


def table(measured: list[RouterShares], refs: list[str], count: int) -> str:
    lines = [
        f"# Default shares: `router-<name>` on {', '.join(f'`{r}`' for r in refs)}",
        "",
        f"Output of `python -m bench.default_shares --prompts {' --prompts '.join(refs)}`: {count} prompts drawn",
        f"from them with seed 0, each sent to `/v1/route` of `{CONFIG}` on a private cluster, {IN_FLIGHT} in",
        f"flight, router by router. Goal: {DEFAULT_STRONG_PERCENT:g} ± {TOLERANCE:g} % to the most capable "
        f"candidate over the first {FIRST:,} requests and in every block of {BLOCK} after the first {BLOCK}.",
        "",
        f"| router | first {FIRST:,}: strong % | blocks of {BLOCK} after the first {BLOCK}: strong % "
        "| worst block, points off | goal |",
        "|---|---:|---|---:|---|",
    ]
    for r in measured:
        blocks = ", ".join(f"{b:.1f}" for b in r.blocks_after_first_200_percent)
        verdict = "met" if r.met else "missed"
        lines.append(f"| {r.router} | {r.first_1000_percent:.1f} | {blocks} | {r.worst_points_off:.1f} | {verdict} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", action="append", required=True, help="a prompt file or folder (repeatable)")
    parser.add_argument("--count", type=int, default=1400, help="requests per router (at least 1,000)")
    parser.add_argument("--out", type=Path, help="the markdown table; the JSON goes beside it")
    args = parser.parse_args()
    prompts = sample(args.prompts, max(args.count, FIRST))
    config = shipped_config(NOBODY, file=CONFIG)
    routers = list(config["applications"][0]["args"]["routers"])
    with tempfile.TemporaryDirectory() as workdir, deployed(config, Path(workdir)) as cluster:
        measured = []
        for router in routers:
            measured.append(shares(cluster.url, router, prompts))
            print(f"{router}: {measured[-1].model_dump_json()}", flush=True)
    write_table(args.out, table(measured, args.prompts, len(prompts)), measured)


if __name__ == "__main__":
    main()
