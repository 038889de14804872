"""Labelling prompts with an LLM judge (the paper's judge augmentation, on your own traffic).

For each prompt the strong and the weak upstream answer, and a judge model grades the answers:
pairwise (which answer is better, asked in both orders) and/or single (each answer 1–10). The
results are battles and judge scores in the project's data schema, ready for ``train``.
"""
