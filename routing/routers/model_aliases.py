"""One name per model across the training sources.

Sources spell the same model differently: a provider suffix (``@hyperbolic``), a quantised
serving of the same weights (``-fp8``), a vendor prefix (``meta-``) or a benchmark's own name
(RouterBench's ``mixtral-8x7b-chat``). Every name is lower-cased and stripped of its
``organisation/`` prefix first; this table then maps what is left to the name the model has in
the other sources, so that a model's outcomes in every source inform one ability.

Only names known to be the same weights are merged: dated snapshots of one product
(``gpt-4-0314``, ``gpt-4-1106-preview``, ``gpt-4-turbo-2024-04-09``) are different models.
"""

from __future__ import annotations

MODEL_ALIASES: dict[str, str] = {
    # LLMRouter drops the vendor prefix ZeroEval keeps.
    "llama-3.1-8b-instruct": "meta-llama-3.1-8b-instruct",
    # ZeroEval: one model served by different providers.
    "llama-3.1-405b-inst@sambanova": "meta-llama-3.1-405b-instruct",
    "llama-3.1-405b-inst-fp8": "meta-llama-3.1-405b-instruct",
    "meta-llama-3.1-405b-instruct@hyperbolic": "meta-llama-3.1-405b-instruct",
    "meta-llama-3.1-70b-instruct@hyperbolic": "meta-llama-3.1-70b-instruct",
    # RouterBench's name for the paper's weak model.
    "mixtral-8x7b-chat": "mixtral-8x7b-instruct-v0.1",
}


def canonical_model_name(name: str) -> str:
    """``name`` lower-cased, without its ``organisation/`` prefix, then through :data:`MODEL_ALIASES`."""
    short = name.strip().split("/")[-1].lower()
    return MODEL_ALIASES.get(short, short)
