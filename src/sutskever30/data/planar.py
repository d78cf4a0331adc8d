"""Planar point sets with exact labels, the tasks of Vinyals, Fortunato, Jaitly 2015
("Pointer Networks", arXiv:1506.03134, §4): points drawn uniformly in the unit square,
their convex hull (``scipy.spatial.ConvexHull``) and their optimal travelling-salesman tour
(Held–Karp dynamic programming, vectorized over a batch of instances of the same size).

Canonical output orders, as the paper's §4.1: a hull starts at its point of lowest index
and goes counter-clockwise; a tour starts at point 0 and goes towards the smaller of its two
neighbours (a tour and its reverse have the same length; one of the two is the label).

Splits come from disjoint seed streams: ``rng(seed, split)`` seeds numpy with
``(SPLITS[split], seed)``, so train, val and test never share a stream whatever the seeds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull

SPLITS = {"train": 0, "val": 1, "test": 2}
HELD_KARP_CHUNK = 2048  # instances per vectorized Held–Karp pass (memory ~ chunk · 2^(n−1) · n)


def rng(seed: int, split: str) -> np.random.Generator:
    """The generator of ``split`` for ``seed``; distinct (split, seed) pairs never collide."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    return np.random.default_rng([SPLITS[split], seed])


@dataclass
class PointSets:
    """``points`` (N, n_max, 2) in the unit square, zero beyond each set's length;
    ``lengths`` (N,); ``labels``: one index sequence per set (into its own points)."""

    points: np.ndarray
    lengths: np.ndarray
    labels: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.lengths)


def uniform_points(gen: np.random.Generator, sizes: np.ndarray, n_max: int | None = None):
    """(N, n_max, 2) points, set i has ``sizes[i]`` points uniform in [0, 1]², zero after."""
    sizes = np.asarray(sizes)
    n_max = int(sizes.max()) if n_max is None else n_max
    points = gen.random((len(sizes), n_max, 2))
    points[np.arange(n_max)[None, :] >= sizes[:, None]] = 0.0
    return points


def hull_order(points: np.ndarray) -> np.ndarray:
    """Indices of the convex hull of ``points`` (n, 2): counter-clockwise (scipy's order for
    2-d hulls), rotated to start at the lowest index."""
    vertices = ConvexHull(points).vertices
    start = int(np.argmin(vertices))
    return np.roll(vertices, -start)


def polygon_area(points: np.ndarray, order) -> float:
    """Shoelace area (unsigned) of the polygon visiting ``points[order]`` in order."""
    p = points[np.asarray(order)]
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _segments_cross(a, b, c, d) -> bool:
    """Do segments ab and cd share a point (proper crossing or touching)?"""

    def orient(p, q, r) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    def on_segment(p, q, r) -> bool:
        return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(
            p[1], q[1]
        )

    o1, o2, o3, o4 = orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b)
    if o1 * o2 < 0 and o3 * o4 < 0:
        return True
    return any(
        o == 0 and on_segment(p, q, r)
        for o, p, q, r in ((o1, a, b, c), (o2, a, b, d), (o3, c, d, a), (o4, c, d, b))
    )


def is_simple_polygon(points: np.ndarray, order) -> bool:
    """At least 3 distinct vertices, no repeated vertex, and no two non-adjacent edges meet."""
    order = [int(i) for i in order]
    k = len(order)
    if k < 3 or len(set(order)) != k:
        return False
    p = points[order]
    for i in range(k):
        for j in range(i + 1, k):
            if j == i + 1 or (i == 0 and j == k - 1):
                continue  # adjacent edges share a vertex by construction
            if _segments_cross(p[i], p[(i + 1) % k], p[j], p[(j + 1) % k]):
                return False
    return True


def hull_coverage(points: np.ndarray, order) -> float | None:
    """Area of the predicted polygon over the true hull's area, or None if the prediction
    is not a simple polygon (the paper's failures). The predicted vertices are input points,
    so a simple polygon lies inside the hull and its intersection with it is itself."""
    if not is_simple_polygon(points, order):
        return None
    return polygon_area(points, order) / ConvexHull(points).volume  # 2-d "volume" = area


def convex_hull_sets(gen: np.random.Generator, count: int, n_min: int, n_max: int) -> PointSets:
    """``count`` sets of n ~ U{n_min..n_max} uniform points with their canonical hulls."""
    if not 3 <= n_min <= n_max:
        raise ValueError(f"need 3 <= n_min <= n_max, got {n_min}, {n_max}")
    sizes = gen.integers(n_min, n_max + 1, size=count)
    points = uniform_points(gen, sizes, n_max)
    labels = [hull_order(points[i, : sizes[i]]) for i in range(count)]
    return PointSets(points, sizes, labels)


# -- TSP --------------------------------------------------------------------------------------


def tour_length(points: np.ndarray, tour) -> float:
    """Length of the closed tour visiting ``points[tour]`` and returning to the start."""
    p = points[np.asarray(tour)]
    return float(np.linalg.norm(p - np.roll(p, -1, axis=0), axis=1).sum())


def canonical_tour(tour) -> np.ndarray:
    """The tour rotated to start at point 0, then oriented towards its smaller neighbour."""
    tour = np.asarray(tour)
    tour = np.roll(tour, -int(np.argmin(tour)))
    if len(tour) > 2 and tour[1] > tour[-1]:
        tour = np.concatenate([tour[:1], tour[1:][::-1]])
    return tour


def held_karp(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Optimal tours of B instances of the same size n, (B, n, 2) → tours (B, n) in canonical
    order and their lengths (B,). Held–Karp: with point 0 the start and S ⊆ {1..n−1},
    C(S, j) = min_{k ∈ S∖{j}} C(S∖{j}, k) + d(k, j), C({j}, j) = d(0, j); the tour's length is
    min_j C({1..n−1}, j) + d(j, 0). Each subset is one numpy operation over the batch."""
    B, n, _ = points.shape
    if n < 3:
        raise ValueError(f"a tour needs n >= 3 points, got {n}")
    d = np.linalg.norm(points[:, :, None] - points[:, None, :], axis=-1)  # (B, n, n)
    m = n - 1  # cities other than 0, city c ↔ bit c−1
    d1 = d[:, 1:, 1:]  # (B, m, m) distances among cities 1..n−1
    cost = np.full((B, 1 << m, m), np.inf)
    parent = np.zeros((B, 1 << m, m), dtype=np.int8)
    for j in range(m):
        cost[:, 1 << j, j] = d[:, 0, j + 1]
    for subset in sorted(range(1, 1 << m), key=lambda s: bin(s).count("1")):
        members = [j for j in range(m) if subset >> j & 1]
        if len(members) < 2:
            continue
        js = np.array(members)
        prevs = subset ^ (1 << js)  # (k,) the subset without j
        # cand[b, a, k] = C(S∖{j_a}, k) + d(k, j_a); inf where k ∉ S∖{j_a}
        cand = cost[:, prevs, :] + d1[:, :, js].transpose(0, 2, 1)  # (B, k, m)
        best = cand.argmin(-1)  # (B, k)
        cost[:, subset, js] = np.take_along_axis(cand, best[..., None], -1)[..., 0]
        parent[:, subset, js] = best
    full = (1 << m) - 1
    closing = cost[:, full, :] + d[:, 1:, 0]  # (B, m)
    last = closing.argmin(-1)
    lengths = closing[np.arange(B), last]
    tours = np.zeros((B, n), dtype=np.int64)
    subset = np.full(B, full)
    j = last
    for pos in range(n - 1, 0, -1):
        tours[:, pos] = j + 1
        prev = parent[np.arange(B), subset, j].astype(np.int64)
        subset = subset ^ (1 << j)
        j = prev
    return np.stack([canonical_tour(t) for t in tours]), lengths


def brute_force_tour(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The optimal tour of one instance (n, 2) by trying every permutation (for tests)."""
    n = len(points)
    best, best_len = None, np.inf
    for perm in itertools.permutations(range(1, n)):
        length = tour_length(points, (0, *perm))
        if length < best_len - 1e-12:
            best, best_len = (0, *perm), length
    return canonical_tour(best), best_len


def tsp_sets(gen: np.random.Generator, count: int, n_min: int, n_max: int) -> PointSets:
    """``count`` sets of n ~ U{n_min..n_max} uniform points with optimal canonical tours
    (Held–Karp, each size in chunks of ``HELD_KARP_CHUNK`` instances)."""
    if not 4 <= n_min <= n_max <= 13:
        raise ValueError(f"need 4 <= n_min <= n_max <= 13 (Held–Karp), got {n_min}, {n_max}")
    sizes = gen.integers(n_min, n_max + 1, size=count)
    points = uniform_points(gen, sizes, n_max)
    labels: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * count
    for n in np.unique(sizes):
        rows = np.flatnonzero(sizes == n)
        for start in range(0, len(rows), HELD_KARP_CHUNK):
            chunk = rows[start : start + HELD_KARP_CHUNK]
            tours, _ = held_karp(points[chunk, :n])
            for r, t in zip(chunk, tours, strict=True):
                labels[r] = t
    return PointSets(points, sizes, labels)
