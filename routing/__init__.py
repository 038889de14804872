"""RouteLLM-style LLM routing: config, wire format, routers, embeddings, upstreams, the request path.

No Ray imports: the Serve deployments in ``deployments/`` wrap what is here.
"""
