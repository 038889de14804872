"""The serving core: what a request passes through (the engine, its resilience, batching,
authentication, the request log, headers, telemetry), a router in service with its share
control, and the in-process client. Imports nothing of :mod:`routing.offline`.
"""
