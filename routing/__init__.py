"""RouteLLM-style LLM routing: config, wire protocol, routers, embeddings, upstreams and the request path. No Ray imports."""
