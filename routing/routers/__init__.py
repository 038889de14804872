"""Routers: each turns prompts into P(strong wins).

A router kind (:mod:`routing.routers.kind`, the built-in ones in :mod:`routing.routers.kinds`)
has a checkpoint directory (:mod:`routing.routers.checkpoint`), is built by ``routellm-serve
train <kind>`` (see :mod:`routing.offline.training`) and scores a batch at once; :mod:`routing.serving.live_router`
holds one in service.
"""
