"""Benchmarks and the clusters they run; every cluster runs with the service's Serve settings."""

from routing import serve_env

serve_env.apply()
