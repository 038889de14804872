"""The playground page (``/playground``) in a real headless Chromium, against a real Ray cluster
whose upstreams are fake servers with prices. Without the browser these tests fail, not skip:
CI installs it (``.ci/run``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import httpx
import pytest

from routing.calibration import load_calibration
from routing.resources import CHECKPOINT_DIR
from testing.apps import fake_pair_args
from testing.cluster import in_process
from testing.fake_upstream import FakeUpstream

pytestmark = pytest.mark.cluster

API_KEY = "sk-playground-key"
STRONG_PRICE = {"input_per_million": 5.0, "output_per_million": 15.0}
WEAK_PRICE = {"input_per_million": 0.5, "output_per_million": 1.5}
WAIT_S = 60


@pytest.fixture(scope="module")
def service(upstreams: dict[str, FakeUpstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    args = fake_pair_args(upstreams["strong"], upstreams["weak"])
    args["upstreams"]["strong"]["price"] = STRONG_PRICE
    args["upstreams"]["weak"]["price"] = WEAK_PRICE
    secret = tmp_path_factory.mktemp("secret") / "api-keys"
    secret.write_text(f"{API_KEY}\n")
    args["auth"] = {"api_keys_file": str(secret)}
    with in_process(args) as cluster:
        yield cluster.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from testing.browser import BrowserMissing, chromium_driver

    try:
        driver = chromium_driver()
    except BrowserMissing as exc:
        pytest.fail(str(exc))  # CI must prove the page works: a missing browser is a failure
    yield driver
    driver.quit()


@pytest.fixture
def page(browser: Any, service: str) -> Any:
    """The playground freshly loaded, its settings read (the header names the models)."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{service}/playground")
    WebDriverWait(browser, WAIT_S).until(lambda d: "strong model: big" in d.find_element("id", "models").text)
    return browser


def wait(driver: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(condition)


def text_of(driver: Any, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def enter_key(driver: Any, key: str = API_KEY) -> None:
    """Types the API key; leaving the box lists the routers."""
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element("id", "key")
    box.clear()
    box.send_keys(key, Keys.TAB)
    wait(driver, lambda d: len(d.find_elements("css selector", "#router option")) == 2)


def choose(driver: Any, router: str, mode: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "router")).select_by_value(router)
    Select(driver.find_element("id", "mode")).select_by_value(mode)
    box = driver.find_element("id", "value")
    box.clear()
    box.send_keys(value)


def ask(driver: Any, text: str) -> Any:
    """Sends ``text`` with Enter; the answer's turn once it is no longer pending."""
    from selenium.webdriver.common.keys import Keys

    before = len(driver.find_elements("css selector", "#chat .turn:not(.user)"))
    driver.find_element("id", "message").send_keys(text, Keys.ENTER)
    wait(
        driver,
        lambda d: (
            len(d.find_elements("css selector", "#chat .turn.assistant:not(.pending), #chat .turn.error")) > before
        ),
    )
    return driver.find_elements("css selector", "#chat .turn:not(.user)")[-1]


def test_page_settings_and_assets_are_served(service: str) -> None:
    with httpx.Client(base_url=service, timeout=30) as http:
        page = http.get("/playground")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for asset, kind in (("playground.js", "text/javascript"), ("playground.css", "text/css")):
            response = http.get(f"/playground/{asset}")
            assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
            assert f'"playground/{asset}"' in page.text
        assert http.get("/playground/", follow_redirects=True).url.path == "/playground"
        missing = http.get("/playground/secrets.txt")
        assert missing.status_code == 404 and "error" in missing.json()
        # Open like /health: the page needs it before it has a key.
        settings = http.get("/playground/settings").json()
    assert settings == {
        "strong": {"model": "big", "price": STRONG_PRICE},
        "weak": {"model": "small", "price": WEAK_PRICE},
        "routers": {
            "random": {"type": "random", "default_threshold": None, "default_strong_percent": 50, "calibrated": True},
            "mf": {"type": "mf", "default_threshold": None, "default_strong_percent": 50, "calibrated": True},
        },
        "auth_required": True,
    }


def test_the_shipped_files_reference_nothing_outside_the_service() -> None:
    for name in ("index.html", "playground.js", "playground.css"):
        text = (files("routing") / "playground" / name).read_text(encoding="utf-8")
        assert not re.search(r"\b(?:https?|wss?|ftp):|@import|url\(", text), name
        for link in re.findall(r'(?:src|href)="([^"]*)"', text):
            assert link == "data:," or not re.match(r"[a-z]+:|/", link), (name, link)
        assert ".innerHTML" not in text and "insertAdjacentHTML" not in text, name


def test_api_errors_show_in_the_page(page: Any, strong: FakeUpstream) -> None:
    # No key yet: listing the routers is refused, and the page says so.
    wait(page, lambda d: "API key" in text_of(d, "status"))
    assert "401" in text_of(page, "status") and "this service wants an API key" in text_of(page, "models")
    enter_key(page)
    assert not page.find_element("id", "status").is_displayed()

    choose(page, "mf", "threshold", "2")
    turn = ask(page, "Is two a threshold?")
    assert "error" in turn.get_attribute("class").split()
    assert turn.text.startswith("Error: 400") and "outside [0, 1]" in turn.text
    # The question is back in the box, to send again, and no model was called.
    assert page.find_element("id", "message").get_attribute("value") == "Is two a threshold?"
    assert text_of(page, "total-answers") == "0 answers" and strong.requests() == []


def test_answers_show_their_routing_and_the_running_totals(page: Any, strong: FakeUpstream, weak: FakeUpstream) -> None:
    from testing.browser import requested_urls

    requested_urls(page)  # earlier pages' requests
    page.refresh()
    wait(page, lambda d: "strong model: big" in text_of(d, "models"))
    enter_key(page)

    # Threshold 0: every score reaches it, the strong model answers.
    choose(page, "mf", "threshold", "0")
    turn = ask(page, "What is the capital of France?")
    badge = turn.find_element("css selector", ".badge")
    assert turn.find_element("css selector", ".text").text == "strong answer #1"
    assert badge.get_attribute("data-model") == "big" and "strong" in badge.get_attribute("class").split()
    assert badge.find_element("css selector", ".answered-by").text == "big (strong)"
    assert badge.find_element("css selector", ".router").text == "router mf"
    assert re.fullmatch(r"score 0\.\d{6}", badge.find_element("css selector", ".score").text)
    assert badge.find_element("css selector", ".threshold").text == "threshold 0"
    candidates = badge.find_element("css selector", ".candidates").text
    assert re.fullmatch(r"candidates small 0\.\d\d · ▸big 1\.00", candidates)
    assert badge.find_element("css selector", ".usage").text == "5 + 4 tokens · $0.0000850"
    assert text_of(page, "total-answers") == "1 answer"

    # Threshold 1: no score reaches it, the weak model answers; the conversation goes along.
    choose(page, "mf", "threshold", "1")
    turn = ask(page, "And of Italy?")
    assert turn.find_element("css selector", ".text").text == "weak answer #1"
    badge = turn.find_element("css selector", ".badge")
    assert badge.get_attribute("data-model") == "small"
    assert badge.find_element("css selector", ".threshold").text == "threshold 1"
    assert weak.requests()[0]["body"]["messages"] == [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "strong answer #1"},
        {"role": "user", "content": "And of Italy?"},
    ]
    assert text_of(page, "total-answers") == "2 answers"
    assert text_of(page, "total-strong") == "strong share: 50% (1 of 2)"
    # 5 prompt and 4 completion tokens each: $0.000085 (strong) + $0.0000085 (weak) against 2 × $0.000085.
    assert text_of(page, "total-cost") == "cost: $0.0000935 against $0.000170 all-strong (45% saved)"

    # A strong share: the calibrated threshold for 30 % of mf's calls.
    table = load_calibration(CHECKPOINT_DIR / "mf")
    assert table is not None
    choose(page, "mf", "percent", "30")
    badge = ask(page, "And of Spain?").find_element("css selector", ".badge")
    assert badge.find_element("css selector", ".strong-percent").text == "strong share 30%"
    assert badge.find_element("css selector", ".threshold").text == f"threshold {table.threshold(30):g}"
    roles = [b.get_attribute("data-role") for b in page.find_elements("css selector", "#chat .badge")]
    assert len(roles) == 3 and text_of(page, "total-answers") == "3 answers"
    assert text_of(page, "total-strong") == f"strong share: {round(100 * roles.count('strong') / 3)}% " + (
        f"({roles.count('strong')} of 3)"
    )

    # A budget far above the strong model's cost per request: the threshold of a 100 % share.
    choose(page, "mf", "budget", "1")
    badge = ask(page, "And of Italy?").find_element("css selector", ".badge")
    assert badge.find_element("css selector", ".budget").text == "budget $1 per request"
    assert badge.find_element("css selector", ".threshold").text == f"threshold {table.thresholds[100]:g}"
    assert badge.get_attribute("data-model") == "big"

    # Nothing was asked of anyone but the service: no CDN, no font, no tracker.
    urls = requested_urls(page) + page.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name)"
    )
    assert f"{page.current_url}/playground.js" in urls and any(u.endswith("/v1/chat/completions") for u in urls)
    outside = [u for u in urls if not (u.startswith(page.current_url.removesuffix("/playground")) or u == "data:,")]
    assert outside == []


def test_a_held_conversation_keeps_its_model_and_each_answer_says_how_it_was_decided(
    page: Any, strong: FakeUpstream, weak: FakeUpstream
) -> None:
    page.refresh()
    wait(page, lambda d: "strong model: big" in text_of(d, "models"))
    enter_key(page)
    page.find_element("id", "hold").click()

    choose(page, "mf", "threshold", "0")
    badge = ask(page, "What is the capital of France?").find_element("css selector", ".badge")
    assert badge.find_element("css selector", ".decided").text == "decided fresh"
    # Afresh, a threshold of 1 would send the follow-up to the weak model: held, it stays.
    choose(page, "mf", "threshold", "1")
    badge = ask(page, "And of Italy?").find_element("css selector", ".badge")
    assert badge.get_attribute("data-model") == "big" and weak.requests() == []
    assert badge.find_element("css selector", ".decided").text == "decided pinned"
    asked = {r["body"]["messages"][-1]["content"] for r in strong.requests()}
    assert asked == {"What is the capital of France?", "And of Italy?"}

    # A new conversation, not held: decided afresh at its own setting.
    page.find_element("id", "new").click()
    page.find_element("id", "hold").click()
    ask(page, "Hello?")
    badge = ask(page, "And again?").find_element("css selector", ".badge")
    assert badge.get_attribute("data-model") == "small" and not badge.find_elements("css selector", ".decided")
