"""RouteLLM-style LLM routing, in layers: :mod:`routing.offline` (data, training, evaluation,
labelling, learning, the commands) above :mod:`routing.serving` (the request path) above the
model layer (:mod:`routing.routers`, :mod:`routing.upstreams`, :mod:`routing.embeddings`) and
the modules here that all of them share (config, protocol, errors, settings).

No Ray imports: the Serve deployments in ``deployments/`` wrap what is here.
"""
