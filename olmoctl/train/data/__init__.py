"""Token data: deterministic token datasets and the global batch order (tokens), the
synthetic corpus (corpus) and the tokenizer tool (`python -m olmoctl.train.data.tokenize`).

May import train.runtime only.
"""
