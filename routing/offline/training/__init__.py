"""Training routers from preference data."""
