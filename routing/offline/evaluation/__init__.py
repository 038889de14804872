"""Routing quality as the RouteLLM paper measures it: quality against the share of strong calls."""
