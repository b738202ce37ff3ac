"""A small English-like corpus, generated deterministically (nothing is downloaded).

Sentences come from a toy grammar over a few hundred words, so a byte-level model has
real structure to learn (spelling, word order, punctuation) and its loss falls quickly.
The same seed gives the same text on every machine and Python version.
"""

from __future__ import annotations

import numpy as np


def _words(text: str, sep: str | None = None) -> list[str]:
    return text.split(sep)


_NOUNS = _words(
    "river mountain city farmer teacher child garden window letter market road forest "
    "bridge winter summer ship captain village doctor friend stone lamp book table "
    "horse bird song story morning evening kitchen door harbor island valley tower "
    "merchant soldier painter baker student engine wheel cloud storm field orchard"
)
_VERBS = _words(
    "sees finds builds carries watches follows paints opens closes writes reads "
    "remembers crosses visits loves fears guards sells buys cleans mends"
)
_INTRANSITIVE = _words("sleeps waits sings laughs rests wanders listens works dreams runs")
_ADJECTIVES = _words(
    "old quiet bright small large green cold warm tired happy narrow distant golden "
    "heavy gentle silent busy empty ancient young"
)
_ADVERBS = _words("slowly quickly quietly often rarely always gladly carefully early late")
_PLACES = _words(
    "near the river|across the bridge|in the old city|by the harbor|under the tower|"
    "behind the market|at the edge of the forest|on the island|in the valley",
    sep="|",
)
_NAMES = _words("Ada Bram Cleo Dara Emil Fenna Gus Hild Ivo Jora Kees Lina Mads Nora Otto")


def _pick(rng: np.random.Generator, words: list[str]) -> str:
    return words[int(rng.integers(len(words)))]


def _noun_phrase(rng: np.random.Generator) -> str:
    if rng.random() < 0.2:
        return _pick(rng, _NAMES)
    det = "the" if rng.random() < 0.7 else "a"
    if rng.random() < 0.5:
        return f"{det} {_pick(rng, _ADJECTIVES)} {_pick(rng, _NOUNS)}"
    return f"{det} {_pick(rng, _NOUNS)}"


def _sentence(rng: np.random.Generator) -> str:
    kind = rng.integers(0, 4)
    if kind == 0:
        s = f"{_noun_phrase(rng)} {_pick(rng, _VERBS)} {_noun_phrase(rng)}"
    elif kind == 1:
        s = f"{_noun_phrase(rng)} {_pick(rng, _INTRANSITIVE)} {_pick(rng, _PLACES)}"
    elif kind == 2:
        s = f"{_noun_phrase(rng)} {_pick(rng, _ADVERBS)} {_pick(rng, _VERBS)} {_noun_phrase(rng)}"
    else:
        s = (
            f"when {_noun_phrase(rng)} {_pick(rng, _INTRANSITIVE)}, "
            f"{_noun_phrase(rng)} {_pick(rng, _VERBS)} {_noun_phrase(rng)}"
        )
    s = s[0].upper() + s[1:]
    return s + ("?" if rng.random() < 0.1 else ".")


def generate_documents(n_bytes: int = 400_000, seed: int = 0) -> list[str]:
    """Documents of 3-12 sentences, about n_bytes of text in all."""
    rng = np.random.default_rng(seed)
    docs: list[str] = []
    total = 0
    while total < n_bytes:
        doc = " ".join(_sentence(rng) for _ in range(int(rng.integers(3, 13))))
        docs.append(doc)
        total += len(doc) + 1
    return docs
