"""Region captions for the synthetic scenes, and the vocabulary that turns them into tokens.

Dense captioning (Johnson et al. 2016, DenseCap) describes every region of a picture in
words. The scenes know what they hold, so every thing gets a caption generated from its
ground truth, in a small fixed grammar::

    a {size} {colour} {shape}                              (the only thing in the scene)
    a {size} {colour} {shape} {relation} a {colour} {shape}  (relation to the nearest other)

("an" before "orange").

* ``shape``: the thing's class name (``THING_CLASSES``);
* ``colour``: a word for the hue of the thing's actual pixels (:func:`colour_word`,
  :data:`COLOUR_WORDS`); shading in the generator scales R, G and B together, so the
  hue of the picture is the hue the generator drew;
* ``size``: ``small`` when the visible area is below :data:`SMALL_AREA_FRACTION` of the
  image (about the median thing at the default settings), else ``large``;
* ``relation``: where the thing lies relative to the nearest other thing (distance
  between box centres): ``left of`` / ``right of`` when the centres differ more along x,
  else ``above`` / ``below`` (image y grows downwards).

:class:`Vocabulary` maps the grammar's words to ids (``<pad>`` = 0, ``<start>``, ``<end>``)
and back. Everything here is numpy/torch only (no plotting).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .scenes import THING_CLASSES, Scene

__all__ = [
    "COLOUR_WORDS",
    "SIZE_WORDS",
    "RELATION_WORDS",
    "SMALL_AREA_FRACTION",
    "PAD",
    "START",
    "END",
    "RegionCaption",
    "hue_of",
    "colour_word",
    "relation_word",
    "scene_captions",
    "caption_slots",
    "SLOTS",
    "Vocabulary",
]

#: Colour words and the hue range (degrees, [start, end)) each one names. Red wraps
#: around 0. The generator draws hues uniformly, so a word's share of the things is
#: its range's share of 360 degrees.
COLOUR_WORDS: tuple[tuple[str, float, float], ...] = (
    ("red", -20.0, 20.0),
    ("orange", 20.0, 45.0),
    ("yellow", 45.0, 70.0),
    ("green", 70.0, 160.0),
    ("blue", 160.0, 250.0),
    ("purple", 250.0, 290.0),
    ("pink", 290.0, 340.0),
)
SIZE_WORDS: tuple[str, str] = ("small", "large")
#: Relation phrases; each is one or two words.
RELATION_WORDS: tuple[str, ...] = ("left of", "right of", "above", "below")
#: A thing whose visible area is below this fraction of the image is "small".
SMALL_AREA_FRACTION = 0.04

PAD, START, END = "<pad>", "<start>", "<end>"


@dataclass(frozen=True)
class RegionCaption:
    """One thing's caption and the ground truth it was written from.

    Attributes:
        text: the caption, e.g. ``"a small red star left of a blue cross"``.
        size, colour, shape: the thing's own words.
        relation: ``""`` when the scene holds no other thing, else one of
            :data:`RELATION_WORDS`.
        other: index of the nearest other thing (``-1`` when none).
        other_colour, other_shape: its words (``""`` when none).
    """

    text: str
    size: str
    colour: str
    shape: str
    relation: str = ""
    other: int = -1
    other_colour: str = ""
    other_shape: str = ""


def hue_of(rgb) -> float:
    """Hue in degrees, ``[0, 360)``, of one RGB colour.

    Args:
        rgb (array-like of 3 numbers): R, G, B on any common scale (0..1 or 0..255),
            not all equal (a grey has no hue).

    Returns:
        float: the hue of HSV, 0 = red, 120 = green, 240 = blue.
    """
    c = np.asarray(rgb, dtype=np.float64)
    if c.shape != (3,):
        raise ValueError(f"rgb must hold 3 numbers (R, G, B), got shape {c.shape}")
    if not np.isfinite(c).all() or (c < 0).any():
        raise ValueError(f"rgb must be finite and >= 0, got {c.tolist()}")
    r, g, b = c
    hi, lo = c.max(), c.min()
    if hi - lo <= 1e-9 * max(hi, 1.0):
        raise ValueError(f"a grey has no hue: rgb {c.tolist()}")
    d = hi - lo
    if hi == r:
        h = ((g - b) / d) % 6
    elif hi == g:
        h = (b - r) / d + 2
    else:
        h = (r - g) / d + 4
    return float(h * 60.0 % 360.0)


def colour_word(rgb) -> str:
    """The word of :data:`COLOUR_WORDS` whose hue range holds this colour's hue.

    Args:
        rgb (array-like of 3 numbers): R, G, B (0..1 or 0..255), not grey.

    Returns:
        str: e.g. ``"red"``.
    """
    h = hue_of(rgb)
    for word, start, end in COLOUR_WORDS:
        if start <= h < end or start <= h - 360.0 < end:
            return word
    raise AssertionError(f"hue {h} in no range")  # the ranges cover [-20, 340)


def relation_word(box, other) -> str:
    """Where ``box`` lies relative to ``other`` (both xyxy, image pixels).

    The centres' difference decides: the larger of ``|dx|`` and ``|dy|`` picks the axis
    (ties go to x), its sign the word. Image y grows downwards, so a smaller y is "above".

    Args:
        box, other (array-like of 4 numbers): ``(x1, y1, x2, y2)`` boxes.

    Returns:
        str: one of :data:`RELATION_WORDS`.
    """
    a, b = np.asarray(box, dtype=np.float64), np.asarray(other, dtype=np.float64)
    for name, v in (("box", a), ("other", b)):
        if v.shape != (4,) or not np.isfinite(v).all():
            raise ValueError(f"{name} must be 4 finite numbers (x1, y1, x2, y2), got {v}")
        if v[2] < v[0] or v[3] < v[1]:
            raise ValueError(f"{name} must have x1 <= x2 and y1 <= y2, got {v.tolist()}")
    dx = (a[0] + a[2] - b[0] - b[2]) / 2
    dy = (a[1] + a[3] - b[1] - b[3]) / 2
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def _article(word: str) -> str:
    """English's indefinite article before ``word``: "an orange", "a red"."""
    return "an" if word[:1] in "aeiou" else "a"


def scene_captions(scene: Scene, relations: bool = True) -> list[RegionCaption]:
    """One caption per thing of a scene, in the scene's order (``scene.boxes``).

    Args:
        scene (Scene): a generated scene (``vizlib.data.make_scene``).
        relations (bool): add ``"{relation} a {colour} {shape}"`` for the nearest other
            thing (box centres), when there is one.

    Returns:
        list[RegionCaption]: ``scene.num_objects`` captions (empty for an empty scene).
    """
    if not isinstance(scene, Scene):
        raise ValueError(f"scene must be a vizlib Scene, got {type(scene).__name__}")
    image = scene.image.astype(np.float64)  # [H, W, 3]
    area_px = scene.image.shape[0] * scene.image.shape[1]
    own = []
    for label, mask in zip(scene.labels, scene.masks, strict=True):
        mean_rgb = image[mask].mean(axis=0)  # shade scales R, G, B together: hue kept
        size = SIZE_WORDS[0] if mask.sum() < SMALL_AREA_FRACTION * area_px else SIZE_WORDS[1]
        own.append((size, colour_word(mean_rgb), THING_CLASSES[int(label) - 1]))
    boxes = scene.boxes.astype(np.float64)  # [N, 4]
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2  # [N, 2]
    out = []
    for i, (size, colour, shape) in enumerate(own):
        text = f"a {size} {colour} {shape}"
        if not relations or len(own) < 2:
            out.append(RegionCaption(text, size, colour, shape))
            continue
        dist = np.hypot(*(centres - centres[i]).T)  # [N]
        dist[i] = np.inf
        j = int(dist.argmin())  # ties: the first in painting order
        rel = relation_word(boxes[i], boxes[j])
        _, other_colour, other_shape = own[j]
        text += f" {rel} {_article(other_colour)} {other_colour} {other_shape}"
        out.append(RegionCaption(text, size, colour, shape, rel, j, other_colour, other_shape))
    return out


#: The parts of a caption :func:`caption_slots` reads, in the order they are written.
SLOTS = ("size", "colour", "shape", "relation", "other_colour", "other_shape")


def caption_slots(text: str) -> dict[str, str | None]:
    """Read a caption of the grammar back into its parts.

    Args:
        text (str): e.g. ``"a small red star left of a blue cross"``.

    Returns:
        dict: one entry per name of :data:`SLOTS`; ``""`` for the relation and the other
        thing when the caption has none; ``None`` for a part that is missing or not a word
        the grammar allows there (a caption that does not parse scores no part).
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    words = text.split()
    colours = {w for w, _, _ in COLOUR_WORDS}
    slots: dict[str, str | None] = dict.fromkeys(SLOTS)
    if len(words) >= 4 and words[0] == "a":
        slots["size"] = words[1] if words[1] in SIZE_WORDS else None
        slots["colour"] = words[2] if words[2] in colours else None
        slots["shape"] = words[3] if words[3] in THING_CLASSES else None
    rest = words[4:]
    if len(words) >= 4 and not rest:
        slots.update(relation="", other_colour="", other_shape="")
    elif len(rest) >= 4 and rest[-3] == _article(rest[-2]):
        rel = " ".join(rest[:-3])
        slots["relation"] = rel if rel in RELATION_WORDS else None
        slots["other_colour"] = rest[-2] if rest[-2] in colours else None
        slots["other_shape"] = rest[-1] if rest[-1] in THING_CLASSES else None
    return slots


class Vocabulary:
    """Every word the caption grammar can use, as ids: ``<pad>`` = 0, ``<start>`` = 1,
    ``<end>`` = 2, then the words.

    Args:
        words (sequence of str, optional): the words (default: the grammar's words).
    """

    def __init__(self, words=None):
        if words is None:
            words = ["a", "an"] + list(SIZE_WORDS) + [w for w, _, _ in COLOUR_WORDS]
            words += list(THING_CLASSES)
            words += list(dict.fromkeys(w for r in RELATION_WORDS for w in r.split()))
        words = list(words)
        if not all(isinstance(w, str) and w and " " not in w for w in words):
            raise ValueError("words must be non-empty strings without spaces")
        if len(set(words)) != len(words) or {PAD, START, END} & set(words):
            raise ValueError("words must be distinct and must not hold <pad>, <start>, <end>")
        self.itos = [PAD, START, END] + words
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    pad_id, start_id, end_id = 0, 1, 2

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    def encode(self, captions, length: int | None = None) -> torch.Tensor:
        """Captions as token ids, each ending with ``<end>`` and padded with ``<pad>``.

        Args:
            captions (list[str]): space-separated words of this vocabulary.
            length (int, optional): pad to this many tokens (default: the longest + 1).

        Returns:
            Tensor[K, T] int64: ``T = length``; no ``<start>`` (the decoder adds it).
        """
        if isinstance(captions, str) or not isinstance(captions, (list, tuple)):
            raise ValueError("captions must be a list of strings")
        rows = []
        for text in captions:
            if not isinstance(text, str):
                raise ValueError(f"captions must be strings, got {type(text).__name__}")
            unknown = [w for w in text.split() if w not in self.stoi]
            if unknown:
                raise ValueError(f"words not in the vocabulary: {unknown} in {text!r}")
            rows.append([self.stoi[w] for w in text.split()] + [self.end_id])
        longest = max((len(r) for r in rows), default=1)
        t = longest if length is None else length
        if t < longest:
            raise ValueError(f"length {t} is shorter than the longest caption ({longest} tokens)")
        out = torch.full((len(rows), t), self.pad_id, dtype=torch.int64)
        for k, r in enumerate(rows):
            out[k, : len(r)] = torch.tensor(r)
        return out

    def decode(self, ids) -> list[str]:
        """Token ids back to captions: each row up to its first ``<end>`` (``<pad>`` and
        ``<start>`` skipped).

        Args:
            ids (Tensor[K, T] or list of lists of int): token ids.

        Returns:
            list[str]: ``K`` captions.
        """
        rows = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        if isinstance(ids, torch.Tensor) and ids.dim() != 2:
            raise ValueError(f"ids must be [K, T], got shape {tuple(ids.shape)}")
        out = []
        for row in rows:
            words = []
            for i in row:
                if not 0 <= int(i) < len(self):
                    raise ValueError(f"token id {i} outside 0..{len(self) - 1}")
                if i == self.end_id:
                    break
                if i not in (self.pad_id, self.start_id):
                    words.append(self.itos[i])
            out.append(" ".join(words))
        return out
