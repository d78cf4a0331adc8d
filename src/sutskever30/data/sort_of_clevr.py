"""Sort-of-CLEVR (Santoro et al. 2017, §4 and Appendix D): pixel images of six coloured
shapes and questions about them, half of which need relations between objects.

Each image holds 6 objects, one of each colour (red, green, blue, orange, yellow, gray),
each a square or a circle, not overlapping, on a white background. Per image there are
10 non-relational and 10 relational questions, each a binary vector of 11 values:

    [colour one-hot (6) | question type one-hot (non-relational, relational) | subtype (3)]

- non-relational: the shape of the X object; is X on the left (horizontal position);
  is X on the top (vertical position);
- relational: the shape of the object closest to X; the shape of the object furthest
  from X; how many objects have the same shape as X (X included, 1-6).

Answers are one of the paper's 10 classes ``ANSWERS``: yes, no, square, circle, 1 … 6.

Everything is a pure function of a numpy ``Generator``: the same seed gives the same
images, questions and answers. Train, validation and test sets come from disjoint seed
streams (:func:`split_rng`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLOURS = ("red", "green", "blue", "orange", "yellow", "gray")
RGB = np.array(
    [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 156, 0], [255, 255, 0], [128, 128, 128]],
    dtype=np.uint8,
)
SHAPES = ("square", "circle")
ANSWERS = ("yes", "no", "square", "circle", "1", "2", "3", "4", "5", "6")
YES, NO, SHAPE0, COUNT1 = 0, 1, 2, 4  # class index of yes, no, "square" and "1"
# question kinds: index = 3 * relational + subtype
QUESTION_TYPES = ("shape", "horizontal", "vertical", "closest", "furthest", "count")
RELATIONAL = (False, False, False, True, True, True)
N_OBJECTS = len(COLOURS)
Q_DIM = N_OBJECTS + 2 + 3  # 11
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Scene:
    """Object k has colour COLOURS[k], centre (x, y) = centres[k] in pixels (x to the
    right, y downwards) and shape SHAPES[shapes[k]]."""

    centres: np.ndarray  # (6, 2) int
    shapes: np.ndarray  # (6,) int in {0, 1}


def split_rng(split: str, seed: int) -> np.random.Generator:
    """The generator of one split: the streams of (split, seed) never coincide across
    splits, so validation and test images are drawn independently of the training ones."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return np.random.default_rng([SPLITS.index(split), seed, 7_310_091])


def min_centre_distance(r: int) -> float:
    """Centres this far apart keep two shapes of half-size ``r`` (squares of side 2r + 1,
    circles of radius r) from touching: their bounding circles (radius r√2) are disjoint."""
    return 2 * r * np.sqrt(2) + 1


def sample_scene(rng: np.random.Generator, size: int, r: int) -> Scene:
    """Six non-overlapping objects, uniform positions (rejection sampling), uniform shapes.
    Scenes where some object has two equally close or equally far others are redrawn, so
    every closest/furthest answer is unique."""
    lo, hi = r, size - 1 - r
    d_min = min_centre_distance(r)
    while True:
        centres: list[np.ndarray] = []
        tries = 0
        while len(centres) < N_OBJECTS and tries < 1000:
            c = rng.integers(lo, hi + 1, size=2)
            tries += 1
            if all(np.hypot(*(c - o)) >= d_min for o in centres):
                centres.append(c)
        if len(centres) < N_OBJECTS:
            continue
        xy = np.stack(centres)
        d2 = ((xy[:, None] - xy[None]) ** 2).sum(-1)  # (6, 6) squared distances
        if all(len(set(np.delete(row, k).tolist())) == N_OBJECTS - 1 for k, row in enumerate(d2)):
            return Scene(centres=xy, shapes=rng.integers(0, 2, size=N_OBJECTS))


def render(scene: Scene, size: int, r: int) -> np.ndarray:
    """The image (3, size, size) uint8: white background, object k in RGB[k]; a square
    covers |x − cx| ≤ r and |y − cy| ≤ r, a circle (x − cx)² + (y − cy)² ≤ r²."""
    img = np.full((size, size, 3), 255, dtype=np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    for k, ((cx, cy), shape) in enumerate(zip(scene.centres, scene.shapes, strict=True)):
        if SHAPES[shape] == "square":
            mask = (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
        else:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        img[mask] = RGB[k]
    return img.transpose(2, 0, 1)


def encode_question(colour: int, kind: int) -> np.ndarray:
    """The 11-value binary question vector of colour ``colour`` and kind ``kind``
    (an index of QUESTION_TYPES)."""
    q = np.zeros(Q_DIM, dtype=np.float32)
    q[colour] = 1
    q[N_OBJECTS + int(RELATIONAL[kind])] = 1
    q[N_OBJECTS + 2 + kind % 3] = 1
    return q


def answer(scene: Scene, colour: int, kind: int, size: int) -> int:
    """The answer class (index of ANSWERS) of question (colour, kind) about ``scene``."""
    xy, shapes = scene.centres.astype(np.int64), scene.shapes
    name = QUESTION_TYPES[kind]
    if name == "shape":
        return SHAPE0 + int(shapes[colour])
    if name == "horizontal":  # "is X on the left?"
        return YES if xy[colour, 0] < size / 2 else NO
    if name == "vertical":  # "is X on the top?"
        return YES if xy[colour, 1] < size / 2 else NO
    d2 = ((xy - xy[colour]) ** 2).sum(-1)
    if name == "count":
        return COUNT1 + int((shapes == shapes[colour]).sum()) - 1
    d2 = d2.astype(np.float64)
    d2[colour] = np.inf if name == "closest" else -np.inf
    other = int(d2.argmin() if name == "closest" else d2.argmax())
    return SHAPE0 + int(shapes[other])


@dataclass(frozen=True)
class SortOfClevr:
    """``n`` images with ``per_image`` questions each (half non-relational, half relational)."""

    images: np.ndarray  # (n, 3, size, size) uint8
    questions: np.ndarray  # (n, per_image, 11) float32
    answers: np.ndarray  # (n, per_image) int64, indices of ANSWERS
    kinds: np.ndarray  # (n, per_image) int64, indices of QUESTION_TYPES
    scenes: tuple[Scene, ...]

    @property
    def relational(self) -> np.ndarray:
        return np.asarray(RELATIONAL)[self.kinds]


def generate(
    rng: np.random.Generator, n: int, *, size: int = 75, r: int = 5, per_image: int = 20
) -> SortOfClevr:
    """``n`` scenes, their images, and ``per_image`` questions each: ``per_image / 2``
    non-relational then as many relational, each with a uniform colour and subtype."""
    if n < 1 or per_image < 2 or per_image % 2:
        raise ValueError("n must be >= 1 and per_image an even number >= 2")
    if size < 4 * r + 4 or r < 1:
        raise ValueError(f"size {size} too small for objects of half-size {r}")
    scenes, images = [], []
    questions = np.zeros((n, per_image, Q_DIM), dtype=np.float32)
    answers = np.zeros((n, per_image), dtype=np.int64)
    kinds = np.zeros((n, per_image), dtype=np.int64)
    half = per_image // 2
    for i in range(n):
        scene = sample_scene(rng, size, r)
        scenes.append(scene)
        images.append(render(scene, size, r))
        colours = rng.integers(0, N_OBJECTS, size=per_image)
        subtypes = rng.integers(0, 3, size=per_image)
        for j in range(per_image):
            kind = 3 * int(j >= half) + int(subtypes[j])
            kinds[i, j] = kind
            questions[i, j] = encode_question(int(colours[j]), kind)
            answers[i, j] = answer(scene, int(colours[j]), kind, size)
    return SortOfClevr(np.stack(images), questions, answers, kinds, tuple(scenes))
