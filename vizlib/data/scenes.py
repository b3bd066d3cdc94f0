"""Synthetic scenes: the book's default data, generated from (seed, index).

A scene is a small picture of "things" (countable shapes: ellipses, rectangles,
triangles, stars, crosses) lying on "stuff" (amorphous textured regions: grass, water,
bricks) that covers the whole background. The split into things and stuff is the one
of COCO-Stuff and panoptic segmentation (Kirillov et al., 2019). One scene carries every
annotation a chapter needs, so every task sees the same pictures:

* ``semantic``  ``(H, W)`` class id of every pixel (things and stuff);
* ``instances`` ``(H, W)`` which thing covers each pixel (0 = none, ``i + 1`` = thing ``i``);
* ``masks``, ``boxes``, ``labels`` per thing, and ``keypoints`` (a fixed set per class).

Label scheme (one id space for every view, so a thing has the same id everywhere)::

    0            BACKGROUND_LABEL: "no thing" for detection (torchvision's convention)
    1 .. 5       things  THING_CLASSES  (ellipse, rectangle, triangle, star, cross)
    6 .. 8       stuff   STUFF_CLASSES  (grass, water, bricks)
    255          IGNORE_INDEX (never produced here; VOC uses it for "void")

Detection labels are ``1 .. NUM_THINGS``. A semantic map with stuff holds ids ``1 .. 8``:
every pixel is stuff or a thing, so id 0 never occurs there (a model with
``NUM_SEMANTIC_CLASSES = 9`` outputs simply learns never to choose it). A semantic map
of things only (``things_only_semantic``) is VOC-style: 0 = background, 1 .. 5 = things.
The same ids are the COCO ``category_id`` values of the exported annotations.

Occlusion: things are painted in order, later ones on top. A thing's ``mask`` is its
*visible* part and its box is the tight box of that mask (as COCO does); the generator
refuses placements that would leave any thing less than ``min_visible`` visible, so
every thing in the picture is annotated and recognisable.

Keypoints: every class has a centre plus a ring of points (ellipse: 4 axis ends,
rectangle: 4 corners, triangle: 3 vertices, star: 5 tips, cross: 4 arm ends). A rotated
shape gives its ring no natural "first" point, so the ring is ordered by a rule one can
read off the picture: start at the topmost point (ties: leftmost) and go clockwise on
screen. Slots a class does not use are padding with visibility 0. Visibility follows
COCO: 2 visible, 1 inside the image but hidden under a later thing, 0 outside the image
(or padding). ``canonical_keypoint_order`` re-applies the rule after an augmentation
(a mirror flip turns clockwise into anticlockwise).

Everything is vectorised numpy on coordinate grids (no per-pixel Python loop): a
64 x 64 scene takes about 1.5 ms on one core (700 a second; ``benchmarks/bench_scenes.py``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields

import numpy as np

from .._checks import check_fraction, check_positive_int

__all__ = [
    "BACKGROUND_LABEL",
    "IGNORE_INDEX",
    "THING_CLASSES",
    "STUFF_CLASSES",
    "NUM_THINGS",
    "NUM_STUFF",
    "NUM_SEMANTIC_CLASSES",
    "NUM_DETECTION_CLASSES",
    "CLASS_NAMES",
    "DETECTION_CLASSES",
    "THING_IDS",
    "STUFF_IDS",
    "PALETTE",
    "NUM_KEYPOINTS",
    "KEYPOINT_NAMES",
    "KEYPOINT_SKELETONS",
    "KEYPOINT_OKS_SIGMAS",
    "SceneConfig",
    "Scene",
    "make_scene",
    "canonical_keypoint_order",
    "things_only_semantic",
]

# ----------------------------------------------------------------------------- labels

#: The label id of "no thing" (detection). Not ``vizlib.anchors.BACKGROUND``, which
#: marks an anchor matched to no box.
BACKGROUND_LABEL = 0
#: The "void" value of a semantic map (``ignore_index`` of ``cross_entropy``).
IGNORE_INDEX = 255

THING_CLASSES = ("ellipse", "rectangle", "triangle", "star", "cross")
STUFF_CLASSES = ("grass", "water", "bricks")
NUM_THINGS = len(THING_CLASSES)
NUM_STUFF = len(STUFF_CLASSES)

#: id -> name for every id a scene uses; index 0 is "background".
CLASS_NAMES = ("background",) + THING_CLASSES + STUFF_CLASSES
#: Detection classes as torchvision models count them (``num_classes=6``).
DETECTION_CLASSES = ("background",) + THING_CLASSES
NUM_DETECTION_CLASSES = len(DETECTION_CLASSES)
NUM_SEMANTIC_CLASSES = len(CLASS_NAMES)
THING_IDS = tuple(range(1, NUM_THINGS + 1))
STUFF_IDS = tuple(range(NUM_THINGS + 1, NUM_THINGS + NUM_STUFF + 1))

#: Each class id's colour (row = id), uint8 RGB: part of the label scheme, like
#: CLASS_NAMES. The COCO panoptic export writes it into its categories and
#: ``vizlib.viz.segmentation.colour_labels`` draws label maps with it. It does not make
#: up the images (each thing gets a random colour); drawing colours (box outlines,
#: curves) are ``vizlib.viz.boxes.PALETTE``.
PALETTE = np.array(
    [
        [0, 0, 0],  # background
        [230, 25, 75],  # ellipse
        [255, 225, 25],  # rectangle
        [0, 130, 200],  # triangle
        [245, 130, 48],  # star
        [145, 30, 180],  # cross
        [60, 140, 50],  # grass
        [70, 110, 200],  # water
        [150, 70, 50],  # bricks
    ],
    dtype=np.uint8,
)

# ------------------------------------------------------------------ canonical shapes
# Each thing is drawn in its own "local" frame (u, v) where it fits in [-1, 1]^2; the
# generator scales it by (sx, sy), rotates it and moves it. Polygons list their
# vertices; the ellipse (the unit disc) has none.


def _regular_star(points: int, inner: float) -> np.ndarray:
    angles = -np.pi / 2 + np.arange(2 * points) * np.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


_ARM = 0.34  # half-width of a cross arm
_POLYGONS = {
    "ellipse": None,
    "rectangle": np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float),
    "triangle": np.array([[0, -1], [np.sqrt(3) / 2, 0.5], [-np.sqrt(3) / 2, 0.5]]),
    "star": _regular_star(5, 0.45),
    "cross": np.array(
        [
            [-_ARM, -1],
            [_ARM, -1],
            [_ARM, -_ARM],
            [1, -_ARM],
            [1, _ARM],
            [_ARM, _ARM],
            [_ARM, 1],
            [-_ARM, 1],
            [-_ARM, _ARM],
            [-1, _ARM],
            [-1, -_ARM],
            [-_ARM, -_ARM],
        ]
    ),
}
# The ring of keypoints of each class, in local coordinates (the centre is added first).
# Each point sits a little inside its corner or tip (10 %, 20 % for the star's sharp tips),
# so that it lies on the thing's own pixels, as COCO's keypoints lie on the body.
_RINGS = {
    "ellipse": 0.9 * np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], dtype=float),
    "rectangle": 0.9 * _POLYGONS["rectangle"],
    "triangle": 0.85 * _POLYGONS["triangle"],
    "star": 0.8 * _POLYGONS["star"][::2],
    "cross": 0.9 * np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], dtype=float),
}
_RING_NAMES = {
    "ellipse": "end",
    "rectangle": "corner",
    "triangle": "vertex",
    "star": "tip",
    "cross": "arm",
}

#: Keypoint slots per thing: 1 centre + the largest ring (the star's 5 tips).
NUM_KEYPOINTS = 1 + max(len(r) for r in _RINGS.values())
#: Names of the keypoints each class uses (the rest of its slots are padding).
KEYPOINT_NAMES = {
    name: ("centre",) + tuple(f"{_RING_NAMES[name]}_{k + 1}" for k in range(len(_RINGS[name])))
    for name in THING_CLASSES
}
#: COCO-style skeletons (1-based keypoint numbers): the ring's outline.
KEYPOINT_SKELETONS = {
    name: [[2 + k, 2 + (k + 1) % len(_RINGS[name])] for k in range(len(_RINGS[name]))]
    for name in THING_CLASSES
}
#: Per-keypoint OKS constants for ``COCOeval.params.kpt_oks_sigmas`` (length NUM_KEYPOINTS).
#: COCO's person sigmas range 0.025 .. 0.107; shape corners are crisp, so one small value.
KEYPOINT_OKS_SIGMAS = np.full(NUM_KEYPOINTS, 0.05)


def _polygon_area(vertices: np.ndarray) -> float:
    x, y = vertices[:, 0], vertices[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


# Area of each canonical shape in local units (so a thing's full area is this * sx * sy).
_UNIT_AREA = {n: (np.pi if p is None else _polygon_area(p)) for n, p in _POLYGONS.items()}


def _inside(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of local points (u, v) inside the canonical shape ``name``."""
    polygon = _POLYGONS[name]
    if polygon is None:
        return u * u + v * v <= 1.0
    # Even-odd rule: a point is inside if a ray to its right crosses the outline an odd
    # number of times. One vectorised test per edge (at most 12 edges).
    inside = np.zeros(u.shape, dtype=bool)
    x1, y1 = polygon[:, 0], polygon[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    for a, b, c, d in zip(x1, y1, x2, y2, strict=True):
        if b == d:
            continue  # a horizontal edge is never crossed by a horizontal ray
        crosses = (v < b) != (v < d)
        x_at_v = a + (v - b) * (c - a) / (d - b)
        inside ^= crosses & (u < x_at_v)
    return inside


# ---------------------------------------------------------------------------- config


@dataclass(frozen=True)
class SceneConfig:
    """Settings of the scene generator (a scene depends on (seed, index, config) only).

    Attributes:
        image_size: side of the square image in pixels (64 trains on a CPU; 128, 256 work).
        min_objects, max_objects: number of things in a non-empty scene (inclusive).
        p_empty: probability that a scene holds no thing at all (only stuff).
        min_size, max_size: a thing's half-extent along its long axis, as a fraction
            of the image size.
        min_visible: fraction of a thing's full area that must stay visible (not
            occluded, not outside the image); placements that break it are redrawn.
        min_area: smallest visible area of a thing, in pixels.
        min_stuff_regions, max_stuff_regions: number of Voronoi cells the background
            is cut into (each gets a random stuff class).
    """

    image_size: int = 64
    min_objects: int = 1
    max_objects: int = 4
    p_empty: float = 0.1
    min_size: float = 0.1
    max_size: float = 0.25
    min_visible: float = 0.4
    min_area: int = 12
    min_stuff_regions: int = 2
    max_stuff_regions: int = 4

    def __post_init__(self):
        check_positive_int("image_size", self.image_size)
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16 pixels, got {self.image_size}")
        check_positive_int("min_objects", self.min_objects, allow_zero=True)
        check_positive_int("max_objects", self.max_objects, allow_zero=True)
        if self.max_objects > 255:
            raise ValueError(
                f"max_objects must be <= 255 (instance ids are uint8), got {self.max_objects}"
            )
        if self.max_objects < self.min_objects:
            raise ValueError(
                f"max_objects ({self.max_objects}) must be >= min_objects ({self.min_objects})"
            )
        check_fraction("p_empty", self.p_empty)
        check_fraction("min_visible", self.min_visible)
        check_fraction("min_size", self.min_size)
        check_fraction("max_size", self.max_size)
        if not 0 < self.min_size <= self.max_size:
            raise ValueError(
                f"expected 0 < min_size <= max_size, got {self.min_size} and {self.max_size}"
            )
        check_positive_int("min_area", self.min_area, allow_zero=True)
        check_positive_int("min_stuff_regions", self.min_stuff_regions)
        check_positive_int("max_stuff_regions", self.max_stuff_regions)
        if self.max_stuff_regions < self.min_stuff_regions:
            raise ValueError("max_stuff_regions must be >= min_stuff_regions")

    def replace(self, **changes) -> SceneConfig:
        """A copy with some settings changed (validated again)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = set(changes) - set(values)
        if unknown:
            raise ValueError(f"unknown SceneConfig settings: {sorted(unknown)}")
        values.update(changes)
        return SceneConfig(**values)


# ----------------------------------------------------------------------------- scene


@dataclass(frozen=True)
class Scene:
    """One generated picture and all of its annotations (numpy arrays).

    Attributes:
        image: ``uint8 (H, W, 3)`` RGB.
        semantic: ``uint8 (H, W)`` class id per pixel: things 1..5, stuff 6..8.
        instances: ``uint8 (H, W)`` 0 where no thing is visible, ``i + 1`` on thing ``i``.
        labels: ``int64 (N,)`` thing class ids in 1..NUM_THINGS, in painting order
            (later things lie on top).
        boxes: ``float32 (N, 4)`` xyxy, absolute pixels: the tight box of each visible
            mask (pixel ``j`` spans ``[j, j + 1)``).
        keypoints: ``float32 (N, NUM_KEYPOINTS, 3)`` (x, y, visibility) per slot.
        seed, index: where the scene comes from.
        masks: ``bool (N, H, W)`` the visible part of each thing (computed from
            ``instances`` on access, so a cached scene stores no redundant masks).
    """

    image: np.ndarray
    semantic: np.ndarray
    instances: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    seed: int
    index: int
    config: SceneConfig = field(repr=False)

    @property
    def num_objects(self) -> int:
        return len(self.labels)

    @property
    def masks(self) -> np.ndarray:
        ids = np.arange(1, self.num_objects + 1, dtype=self.instances.dtype)
        return self.instances[None] == ids[:, None, None]  # [N, H, W]

    @property
    def stuff_ids(self) -> np.ndarray:
        """Stuff class ids present in the picture (sorted)."""
        return np.array([s for s in STUFF_IDS if (self.semantic == s).any()], dtype=np.int64)


# ------------------------------------------------------------------------- textures


def _stuff_texture(stuff_id: int, x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
    """An ``(H, W, 3)`` float texture in [0, 1] for one stuff class.

    Textures are defined in units of the image size, so a scene looks the same at 64 and
    at 256 pixels, only sharper.
    """
    size = x.shape[1]
    noise = rng.random(x.shape, dtype=np.float32)  # [H, W]
    name = CLASS_NAMES[stuff_id]
    if name == "grass":
        # noisy green with vertical blades: a random brightness per column
        blades = rng.random((1, size), dtype=np.float32)  # [1, W]
        shade = 0.75 + 0.25 * noise + 0.2 * (blades - 0.5)  # [H, W]
        base = np.array([0.22, 0.48, 0.16], dtype=np.float32)
    elif name == "water":
        # blue with sine waves in a random direction
        angle = rng.uniform(0, np.pi)
        period = size / rng.uniform(4, 7)
        phase = rng.uniform(0, 2 * np.pi)
        along = x * np.cos(angle) + y * np.sin(angle)  # [H, W]
        shade = 0.8 + 0.2 * np.sin(2 * np.pi * along / period + phase) + 0.06 * noise
        base = np.array([0.16, 0.3, 0.62], dtype=np.float32)
    else:  # bricks: rows of bricks, every other row shifted by half a brick
        height = size / 10
        row = np.floor(y / height)  # [H, W]
        shift = (row % 2) * height
        in_row = y - row * height
        in_brick = (x + shift) % (2 * height)
        mortar = (in_row < max(1.0, height * 0.15)) | (in_brick < max(1.0, height * 0.15))
        shade = np.where(mortar, 1.6, 0.85 + 0.15 * noise)
        base = np.array([0.5, 0.24, 0.17], dtype=np.float32)
    return np.clip(shade[..., None] * base, 0.0, 1.0)  # [H, W, 3]


def _random_thing_colour(rng: np.random.Generator) -> np.ndarray:
    """A saturated, bright colour (HSV with s, v high), so things stand out from stuff."""
    h, s, v = rng.random(), rng.uniform(0.55, 1.0), rng.uniform(0.75, 1.0)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb, dtype=np.float32)


# ------------------------------------------------------------------------ generator


@dataclass
class _Thing:
    label: int  # 1..NUM_THINGS
    cx: float
    cy: float
    sx: float
    sy: float
    angle: float
    colour: np.ndarray
    mask: np.ndarray  # bool [H, W]: the thing's full (unoccluded) in-image mask

    @property
    def name(self) -> str:
        return THING_CLASSES[self.label - 1]

    def local_to_image(self, points: np.ndarray) -> np.ndarray:
        """Map local (u, v) points ``[P, 2]`` to image (x, y) ``[P, 2]``."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        u, v = points[:, 0] * self.sx, points[:, 1] * self.sy
        return np.stack([self.cx + c * u - s * v, self.cy + s * u + c * v], axis=1)


def _draw_thing(rng: np.random.Generator, config: SceneConfig, x, y) -> _Thing:
    """Sample one thing's pose and rasterise its full mask."""
    size = config.image_size
    label = int(rng.integers(1, NUM_THINGS + 1))
    name = THING_CLASSES[label - 1]
    sx = rng.uniform(config.min_size, config.max_size) * size
    # an ellipse stays clearly elongated so that its axis ends (keypoints) can be seen
    low, high = (0.45, 0.8) if name == "ellipse" else (0.55, 1.0)
    sy = sx * rng.uniform(low, high)
    angle = rng.uniform(0, 2 * np.pi)
    cx, cy = rng.uniform(0.05, 0.95, size=2) * size
    colour = _random_thing_colour(rng)
    # Only pixels near the thing can be inside it: work in its bounding window (every
    # canonical shape fits in the square [-1, 1]^2, so within radius hypot(sx, sy)).
    reach = np.hypot(sx, sy)
    r0, r1 = max(0, int(cy - reach)), min(size, int(cy + reach) + 2)
    c0, c1 = max(0, int(cx - reach)), min(size, int(cx + reach) + 2)
    mask = np.zeros((size, size), dtype=bool)
    if r0 < r1 and c0 < c1:
        # local coordinates of the pixel centres: undo the move, the rotation, the scale
        c, s = np.cos(angle), np.sin(angle)
        dx, dy = x[r0:r1, c0:c1] - cx, y[r0:r1, c0:c1] - cy  # [h, w]
        u = (c * dx + s * dy) / sx
        v = (-s * dx + c * dy) / sy
        mask[r0:r1, c0:c1] = _inside(name, u, v)
    return _Thing(label, cx, cy, sx, sy, angle, colour, mask)


def _place_things(rng: np.random.Generator, config: SceneConfig, count: int, x, y, force: bool):
    """Place ``count`` things one after the other, redrawing a thing that would be
    too small, too far outside the image, or would hide too much of an earlier one."""
    things: list[_Thing] = []
    visible: list[np.ndarray] = []  # visible mask of each placed thing, updated as we go
    tries = 0
    max_tries = 15 * max(count, 1) + (200 if force else 0)
    while len(things) < count and tries < max_tries:
        tries += 1
        cand = _draw_thing(rng, config, x, y)
        full_area = _UNIT_AREA[cand.name] * cand.sx * cand.sy
        area = int(cand.mask.sum())
        if area < max(config.min_area, config.min_visible * full_area):
            continue
        new_visible = [vis & ~cand.mask for vis in visible]
        ok = all(
            int(nv.sum())
            >= max(config.min_area, config.min_visible * _UNIT_AREA[t.name] * t.sx * t.sy)
            for nv, t in zip(new_visible, things, strict=True)
        )
        if not ok:
            continue
        things.append(cand)
        visible = new_visible + [cand.mask]
    return things, visible


def _keypoints(things: list[_Thing], instances: np.ndarray, size: int) -> np.ndarray:
    """``float32 (N, NUM_KEYPOINTS, 3)``: positions and COCO visibility of each thing's points."""
    out = np.zeros((len(things), NUM_KEYPOINTS, 3), dtype=np.float32)
    for i, thing in enumerate(things):
        local = np.concatenate([np.zeros((1, 2)), _RINGS[thing.name]])  # centre + ring
        points = thing.local_to_image(local)  # [P, 2]
        inside = (points >= 0).all(axis=1) & (points < size).all(axis=1)  # [P]
        px = np.clip(points[:, 0].astype(int), 0, size - 1)
        py = np.clip(points[:, 1].astype(int), 0, size - 1)
        owner = instances[py, px]  # [P] which thing is on top at that pixel
        hidden = owner > i + 1  # a thing painted later covers the point
        vis = np.where(inside, np.where(hidden, 1, 2), 0)
        out[i, : len(points), :2] = points
        out[i, : len(points), 2] = vis
    return canonical_keypoint_order(out)


def canonical_keypoint_order(keypoints):
    """Reorder each thing's ring of keypoints: topmost first, then clockwise on screen.

    Slot 0 (the centre) stays; slots with visibility 0 *and* position (0, 0) are padding
    and stay at the end. Ties for "topmost" go to the leftmost point. Call it again
    after any augmentation that mirrors or rotates the image.

    Args:
        keypoints (ndarray or Tensor[N, K, 3]): (x, y, visibility), K = NUM_KEYPOINTS.

    Returns:
        the same type and shape, reordered (the input is not modified).
    """
    is_torch = not isinstance(keypoints, np.ndarray)
    kp = keypoints.detach().cpu().numpy() if is_torch else keypoints
    if kp.ndim != 3 or kp.shape[-1] != 3:
        raise ValueError(f"keypoints must have shape [N, K, 3], got {tuple(kp.shape)}")
    out = kp.copy()
    for i in range(len(kp)):
        centre = kp[i, 0, :2]
        padding = (kp[i, 1:, 2] == 0) & (kp[i, 1:, 0] == 0) & (kp[i, 1:, 1] == 0)
        ring = kp[i, 1:][~padding]  # [R, 3]
        if len(ring) < 2:
            continue
        dx, dy = ring[:, 0] - centre[0], ring[:, 1] - centre[1]
        # image y points down, so increasing atan2(dy, dx) turns clockwise on screen
        angle = np.arctan2(dy, dx)
        first = np.lexsort((ring[:, 0], np.round(ring[:, 1], 3)))[0]
        order = np.argsort((angle - angle[first]) % (2 * np.pi), kind="stable")
        out[i, 1 : 1 + len(ring)] = ring[order]
        out[i, 1 + len(ring) :] = 0
    if is_torch:
        import torch

        return torch.as_tensor(out, dtype=keypoints.dtype, device=keypoints.device)
    return out


@functools.lru_cache(maxsize=8)
def _pixel_centres(size: int):
    """x and y of every pixel centre, ``[H, W]`` each: pixel (row i, column j) covers
    ``[j, j + 1) x [i, i + 1)``, so its centre is ``(j + 0.5, i + 0.5)``."""
    coords = np.arange(size, dtype=np.float32) + 0.5
    x, y = np.meshgrid(coords, coords)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def make_scene(
    seed: int, index: int, config: SceneConfig | None = None, *, num_objects: int | None = None
) -> Scene:
    """Generate scene number ``index`` of the stream ``seed`` (same on every machine).

    Args:
        seed (int): the data set's seed, >= 0.
        index (int): the picture's number in that data set, >= 0.
        config (SceneConfig): generator settings (default ``SceneConfig()``).
        num_objects (int, optional): force exactly this many things (the single-object
            localisation view uses 1); otherwise drawn from the config.

    Returns:
        Scene: the picture and its annotations.
    """
    config = SceneConfig() if config is None else config
    if not isinstance(config, SceneConfig):
        raise ValueError(f"config must be a SceneConfig, got {type(config).__name__}")
    seed = check_positive_int("seed", seed, allow_zero=True)
    index = check_positive_int("index", index, allow_zero=True)
    rng = np.random.default_rng([seed, index])
    size = config.image_size
    # pixel centres: pixel (row i, column j) covers [j, j+1) x [i, i+1)
    x, y = _pixel_centres(size)  # [H, W] each

    # 1. stuff: a Voronoi partition of the background, one stuff class per cell
    regions = int(rng.integers(config.min_stuff_regions, config.max_stuff_regions + 1))
    sites = rng.uniform(0, size, size=(regions, 2)).astype(np.float32)
    cell_class = rng.integers(0, NUM_STUFF, size=regions)
    dist = (x[None] - sites[:, 0, None, None]) ** 2 + (
        y[None] - sites[:, 1, None, None]
    ) ** 2  # [R, H, W]
    semantic = np.asarray(STUFF_IDS, dtype=np.uint8)[cell_class][dist.argmin(axis=0)]  # [H, W]
    image = np.zeros((size, size, 3), dtype=np.float32)
    for stuff_id in STUFF_IDS:
        where = semantic == stuff_id
        if where.any():
            image = np.where(where[..., None], _stuff_texture(stuff_id, x, y, rng), image)

    # 2. things, painted back to front
    if num_objects is None:
        empty = rng.random() < config.p_empty
        count = 0 if empty else int(rng.integers(config.min_objects, config.max_objects + 1))
    else:
        count = check_positive_int("num_objects", num_objects, allow_zero=True)
    things, visible = _place_things(rng, config, count, x, y, force=num_objects is not None)
    instances = np.zeros((size, size), dtype=np.uint8)  # max_objects <= 255
    shade = 0.9 + 0.1 * rng.random((size, size, 1), dtype=np.float32)  # [H, W, 1] a little grain
    for i, thing in enumerate(things):
        image = np.where(thing.mask[..., None], thing.colour * shade, image)
        semantic[thing.mask] = thing.label
        instances[thing.mask] = i + 1

    # 3. annotations from the visible masks
    n = len(things)
    boxes = np.zeros((n, 4), dtype=np.float32)
    for i, m in enumerate(visible):
        rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    labels = np.array([t.label for t in things], dtype=np.int64)
    keypoints = _keypoints(things, instances, size)
    return Scene(
        image=np.round(image * 255).astype(np.uint8),
        semantic=semantic,
        instances=instances,
        labels=labels,
        boxes=boxes,
        keypoints=keypoints,
        seed=seed,
        index=index,
        config=config,
    )


def things_only_semantic(semantic):
    """VOC-style semantic map: things keep ids 1..NUM_THINGS, all stuff becomes 0.

    Args:
        semantic (ndarray or Tensor[H, W]): ids as in ``Scene.semantic``.

    Returns:
        the same type and shape, with ids in 0..NUM_THINGS.
    """
    return semantic * (semantic <= NUM_THINGS)
