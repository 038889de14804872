"""What the tests and the benchmarks share: fake upstream servers (:mod:`testing.fake_upstream`),
local clusters started each way the service is (:mod:`testing.cluster`), the applications they
serve (:mod:`testing.apps`), steady traffic and waiting (:mod:`testing.traffic`), a load
generator (:mod:`testing.load`), a headless browser (:mod:`testing.browser`), a real Redis
server (:mod:`testing.redis_server`) and an app served over HTTP from a thread
(:mod:`testing.local_server`). Every cluster runs with the service's Serve settings."""

from pathlib import Path

from routing import serve_env

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

serve_env.apply()
