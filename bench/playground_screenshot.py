"""The README's screenshot of the playground page.

    python -m bench.playground_screenshot --out docs/playground.png

Starts two fake upstream servers (``testing/fake_upstream.py``, answering ``"<name> answer #<k>"``)
with prices, the graph on a private local Ray cluster with the ``mf`` and ``random`` routers, and
headless Chromium (see ``testing/browser.py``); asks three questions on the page and saves it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from testing.apps import graph_config
from testing.browser import chromium_driver
from testing.cluster import deployed
from testing.fake_upstream import FakeUpstream

# (router, mode, value, question): one answer from each model, then a calibrated strong share.
QUESTIONS = [
    ("mf", "threshold", "0.5", "Prove that there are infinitely many primes."),
    ("mf", "threshold", "0.9", "Now say it in one sentence."),
    ("mf", "percent", "30", "What is the capital of France?"),
]


def app_args(strong: FakeUpstream, weak: FakeUpstream) -> dict[str, Any]:
    return {
        "upstreams": {
            "strong": {
                "backend": "openai",
                "model": "big-model",
                "base_url": strong.base_url,
                "price": {"input_per_million": 2.5, "output_per_million": 10.0},
            },
            "weak": {
                "backend": "openai",
                "model": "small-model",
                "base_url": weak.base_url,
                "price": {"input_per_million": 0.15, "output_per_million": 0.6},
            },
        },
        "routers": {"mf": {"type": "mf"}, "random": {"type": "random", "seed": 0}},
    }


def screenshot(url: str, out: Path) -> None:
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = chromium_driver(width=1024, height=900)
    try:
        driver.get(f"{url}/playground")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_elements("css selector", "#router option"))
        for number, (router, mode, value, question) in enumerate(QUESTIONS, start=1):
            Select(driver.find_element("id", "router")).select_by_value(router)
            Select(driver.find_element("id", "mode")).select_by_value(mode)
            box = driver.find_element("id", "value")
            box.clear()
            box.send_keys(value)
            driver.find_element("id", "message").send_keys(question, Keys.ENTER)
            wait.until(lambda d, n=number: len(d.find_elements("css selector", "#chat .badge, #chat .error")) >= n)
        driver.find_element("id", "message").send_keys("What about Italy?")
        driver.execute_script("window.scrollTo(0, 0)")
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/playground.png"))
    args = parser.parse_args(argv)
    strong, weak = FakeUpstream("strong"), FakeUpstream("weak")
    try:
        with (
            tempfile.TemporaryDirectory() as workdir,
            deployed(graph_config(app_args(strong, weak), []), Path(workdir)) as cluster,
        ):
            screenshot(cluster.url, args.out)
    finally:
        strong.stop()
        weak.stop()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
