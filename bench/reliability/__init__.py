"""Reliability report: the service under failing upstreams, lost replicas, bad requests and missing keys.

    python -m bench.reliability [--requests 16] [--concurrency 4] [--json report.json]

Starts two fake OpenAI-compatible upstreams (``testing/fake_upstream.py``) and a private Ray
cluster running the application of ``serve_config.yaml``, pointed at them, with short time
limits and prices. Then it runs every scenario over HTTP and prints, per scenario, the requests
sent, answered, failed by reason (status and error code), the fallbacks by reason, and latency.
It ends with what operators would check: the Prometheus metrics, and whether any API key
appears in any log line.

The tests (``tests/test_reliability.py``) run the same scenarios and assert on their tallies.
"""
