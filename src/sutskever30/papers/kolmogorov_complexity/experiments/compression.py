"""Compressors as upper bounds on K: random bytes do not compress, the counting argument
holds for real compressors, real text does compress.

Deviations from the book: the book proves the counting bound for the (uncomputable) K; here
it is measured for the best of real compressors, which are one particular set of
descriptions. Sizes and thresholds are ours (README).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sutskever30.core import plots
from sutskever30.core.registry import Experiment
from sutskever30.core.run import Run
from sutskever30.data.multi30k import LANGUAGES, load_multi30k
from sutskever30.nn.compression import COMPRESSORS
from sutskever30.papers.kolmogorov_complexity.model import (
    compression_ratios,
    compression_savings,
    fraction_compressible,
)


@dataclass(frozen=True)
class CompressionConfig:
    random_bytes: int = 1_000_000  # length of the random byte string compressed
    min_ratio: float = 0.99  # "incompressible": best |C(x)| / |x| at least this
    n_strings: int = 10_000  # random strings for the counting argument
    n_bits: int = 4096  # their length
    max_c: int = 10  # the bound 2^(−c) is checked for c = 1..max_c
    # lzma at its strongest preset costs ~80 ms a call (its 64 MiB dictionary), too slow here
    counting_compressors: tuple[str, ...] = ("zlib", "bz2")
    biased_p: float = 0.05  # P(1) of the low-entropy strings compressed for contrast
    text_bytes: int = 1_000_000  # bytes of real captions per language

    def __post_init__(self) -> None:
        if self.random_bytes < 1 or self.n_strings < 1 or self.text_bytes < 1:
            raise ValueError("random_bytes, n_strings and text_bytes must be ≥ 1")
        if self.n_bits < 8 or self.n_bits % 8:
            raise ValueError("n_bits must be a positive multiple of 8")
        if not 0 < self.min_ratio <= 1:
            raise ValueError("min_ratio must be in (0, 1]")
        if self.max_c < 1:
            raise ValueError("max_c must be ≥ 1")
        if not self.counting_compressors or set(self.counting_compressors) - set(COMPRESSORS):
            raise ValueError(f"counting_compressors must be some of {list(COMPRESSORS)}")
        if not 0 < self.biased_p < 1:
            raise ValueError("biased_p must be in (0, 1)")


def random_bytes_claim(run: Run, cfg: CompressionConfig, rng: np.random.Generator) -> None:
    data = rng.bytes(cfg.random_bytes)
    ratios = compression_ratios(data)
    run.claim(
        "random_incompressible",
        f"{cfg.random_bytes:,} uniformly random bytes do not compress: the best of "
        f"{', '.join(COMPRESSORS)} keeps |C(x)| / |x| ≥ {cfg.min_ratio}",
        "most strings are incompressible: K(x) ≥ |x| − c for all but a 2^(−c) fraction",
        {**{f"{name}_ratio": r for name, r in ratios.items()}, "min_ratio": cfg.min_ratio},
        f"min({', '.join(f'{name}_ratio' for name in ratios)}) >= min_ratio",
    )


def counting_claim(run: Run, cfg: CompressionConfig, rng: np.random.Generator) -> dict:
    strings = rng.integers(0, 2, size=(cfg.n_strings, cfg.n_bits), dtype=np.uint8)
    biased = (rng.random((cfg.n_strings, cfg.n_bits)) < cfg.biased_p).astype(np.uint8)
    bar = run.progress(2 * cfg.n_strings, "compressing strings")
    savings = compression_savings(strings, cfg.counting_compressors, bar.update)
    savings_biased = compression_savings(biased, cfg.counting_compressors, bar.update)
    bar.close()
    cs = list(range(1, cfg.max_c + 1))
    fraction = fraction_compressible(savings, cs)
    bound = [2.0**-c for c in cs]
    run.claim(
        "counting_argument",
        f"of {cfg.n_strings:,} random {cfg.n_bits}-bit strings, the fraction that the best of "
        f"{', '.join(cfg.counting_compressors)} shortens by ≥ c bits is below 2^(−c), "
        f"c = 1..{cfg.max_c}",
        "fewer than 2^(n−c) strings of length n have complexity < n − c (Ch. 1)",
        {"fraction": fraction.tolist(), "bound": bound, "c": cs},
        " and ".join(f"fraction[{i}] < bound[{i}]" for i in range(len(cs))),
    )
    run.report(
        "biased_strings_compress",
        f"contrast: {cfg.n_bits}-bit strings with P(1) = {cfg.biased_p} (entropy "
        f"{cfg.n_bits * binary_entropy(cfg.biased_p):.0f} bits) are shortened by the same "
        "compressors; fraction shortened by ≥ c bits",
        "the counting bound is about uniformly random strings; structured ones compress",
        {
            "fraction": fraction_compressible(savings_biased, cs).tolist(),
            "mean_saving_bits": float(savings_biased.mean()),
        },
    )
    run.summary.update(
        random_saving_bits={"min": int(savings.min()), "max": int(savings.max())},
        biased_saving_bits={"min": int(savings_biased.min()), "max": int(savings_biased.max())},
    )
    return {
        "cs": cs,
        "fraction": fraction,
        "bound": bound,
        "savings": savings,
        "savings_biased": savings_biased,
    }


def binary_entropy(p: float) -> float:
    return float(-p * np.log2(p) - (1 - p) * np.log2(1 - p))


def text_report(run: Run, cfg: CompressionConfig) -> dict[str, dict[str, float]]:
    captions = load_multi30k("train")
    bits_per_char = {}
    for language in LANGUAGES:
        text = "\n".join(captions[language]).encode("utf-8")[: cfg.text_bytes]
        chars = len(text.decode("utf-8", errors="ignore"))
        ratios = compression_ratios(text)
        bits_per_char[language] = {name: 8 * r * len(text) / chars for name, r in ratios.items()}
    run.report(
        "text_upper_bound",
        f"upper bound on K of {cfg.text_bytes:,} bytes of Multi30k captions, in bits per "
        "character (8 bits raw)",
        "K(x) ≤ |C(x)| + O(1) for any compressor C",
        {f"{lang}_{name}": v for lang, d in bits_per_char.items() for name, v in d.items()},
    )
    return bits_per_char


def plot_counting(run: Run, cfg: CompressionConfig, counting: dict) -> None:
    fig, (ax0, ax1) = plots.figure(ncols=2)
    cs = counting["cs"]
    ax0.semilogy(cs, counting["bound"], "k--", label="bound 2^(−c)")
    ax0.semilogy(
        cs, np.maximum(counting["fraction"], 1e-6), "o-", label="uniform (0 drawn at 1e-6)"
    )
    biased = fraction_compressible(counting["savings_biased"], cs)
    ax0.semilogy(cs, np.maximum(biased, 1e-6), "s-", label=f"P(1) = {cfg.biased_p}")
    ax0.set_xlabel("c (bits saved)")
    ax0.set_ylabel("fraction shortened by ≥ c bits")
    ax0.set_title(f"{cfg.n_bits}-bit strings")
    ax0.grid(alpha=0.3)
    ax0.legend(loc="center left")
    edges = np.histogram_bin_edges(
        np.concatenate([counting["savings"], counting["savings_biased"]]), bins=50
    )
    for key, label in (("savings", "uniform"), ("savings_biased", f"P(1) = {cfg.biased_p}")):
        ax1.hist(counting[key], bins=edges, label=label)
    ax1.axvline(0, color="k", lw=1)
    ax1.set_xlabel("n − |C(x)| (bits; > 0: shortened)")
    ax1.set_ylabel("strings")
    ax1.set_title("bits saved by the best compressor")
    ax1.grid(alpha=0.3)
    ax1.legend(loc="upper center")
    plots.save(fig, run.plot_path("counting.png"))


def run_compression(run: Run, cfg: CompressionConfig) -> None:
    rng = np.random.default_rng(run.seed)
    random_bytes_claim(run, cfg, rng)
    counting = counting_claim(run, cfg, rng)
    text_report(run, cfg)
    plot_counting(run, cfg, counting)


SMOKE = CompressionConfig(random_bytes=20_000, n_strings=100, n_bits=512, text_bytes=20_000)
QUICK = CompressionConfig()
FULL = CompressionConfig(random_bytes=100_000_000, n_strings=100_000, max_c=14)

EXPERIMENT = Experiment(
    name="compression",
    description="random bytes are incompressible; the counting argument with real compressors",
    presets={"smoke": SMOKE, "quick": QUICK, "full": FULL},
    run=run_compression,
    quick_minutes=0.2,
    datasets=("multi30k",),
)
