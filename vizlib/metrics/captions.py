"""Caption scores against one reference caption per region (core maths, no plotting).

The scenes' captions come from a fixed grammar, so a predicted caption can be compared
with its reference word by word; free-text captioning needs n-gram metrics (BLEU, METEOR,
CIDEr) because many sentences say the same thing, which is not the case here.

* :func:`caption_scores`: exact-caption accuracy and per-word accuracy.
"""

from __future__ import annotations

__all__ = ["caption_scores"]


def _check_texts(name: str, texts) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise ValueError(f"{name} must be a list of strings")
    if not all(isinstance(t, str) for t in texts):
        raise ValueError(f"{name} must hold strings only")
    return list(texts)


def caption_scores(predicted, reference) -> dict[str, float]:
    """Exact-caption accuracy and per-word accuracy.

    * ``exact``: fraction of regions whose predicted caption equals the reference;
    * ``word``: fraction of reference words (plus one end-of-caption slot per caption)
      matched by the predicted word at the same position; a prediction that stops early
      misses the rest, one that goes on too long misses the end slot.

    Args:
        predicted (list[str]): ``K`` predicted captions (space-separated words).
        reference (list[str]): ``K`` reference captions, at least one.

    Returns:
        dict with ``exact``, ``word`` (floats in [0, 1]) and ``regions`` (``K``).
    """
    predicted = _check_texts("predicted", predicted)
    reference = _check_texts("reference", reference)
    if len(predicted) != len(reference):
        raise ValueError(
            f"predicted has {len(predicted)} captions, reference {len(reference)}: one each"
        )
    if not reference:
        raise ValueError("no captions to score")
    exact = hits = slots = 0
    for p, r in zip(predicted, reference, strict=True):
        pw, rw = p.split() + ["</s>"], r.split() + ["</s>"]
        exact += pw == rw
        hits += sum(a == b for a, b in zip(pw, rw, strict=False))
        slots += len(rw)
    return {"exact": exact / len(reference), "word": hits / slots, "regions": len(reference)}
