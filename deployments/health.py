"""What the replicas' ``check_health`` methods share: Serve calls each one periodically and
restarts a replica whose check raises or takes longer than its health-check timeout."""

HEALTH_PROBE = "health check"
# Well inside Serve's default health_check_timeout_s (30 s), so a slow probe is reported as ours.
HEALTH_PROBE_TIMEOUT_S = 20.0
