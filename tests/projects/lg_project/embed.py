"""A deterministic local embedding for tests: how often each letter a-z occurs, normalised."""

import math


def embed(texts: list[str]) -> list[list[float]]:
    vectors = []
    for text in texts:
        counts = [float(text.lower().count(chr(ord("a") + i))) for i in range(26)]
        norm = math.sqrt(sum(c * c for c in counts)) or 1.0
        vectors.append([c / norm for c in counts])
    return vectors
