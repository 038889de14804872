"""The offline code: preference data, training, evaluation, labelling, the learner and the
``routellm-serve`` commands. Never on the request path: :mod:`routing.serving` does not import it.
"""
