"""Measuring the "sweet spot" of the initialization scale.

Four experiments: (a) activation std and gradient norm per layer of 50-layer ReLU and tanh
MLPs across gains, against the mean-field recursion; (b) a 20-layer ReLU MLP trained on MNIST
from He init and from half of it; (c) a recurrent net's state norm over 100 steps against
the spectral radius of its recurrent matrix; (d) singular-value spectra of products of
Gaussian and orthogonal matrices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from sutskever30.core import plots
from sutskever30.core.registry import Experiment, Paper
from sutskever30.core.run import Run
from sutskever30.core.train import batch_indices, fit
from sutskever30.data.mnist import load_mnist
from sutskever30.papers.initialization_scale.model import (
    DEFAULT_GAIN,
    DeepMLP,
    ElmanRNN,
    MLPConfig,
    init_std,
    lyapunov_exponents,
    mean_field_std,
    product_singular_values,
    recurrent_matrix,
)

LN10 = math.log(10.0)  # cross-entropy of a uniform guess over 10 classes
HE = DEFAULT_GAIN["relu"]


def mnist(train_size: int, test_size: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The first images of the train and test splits, standardized with the training set's
    pixel mean and std (one scalar each)."""
    x_train, y_train = load_mnist("train")
    mean, std = float(x_train.mean()), float(x_train.std())
    out = {}
    for split, (x, y), size in (
        ("train", (x_train, y_train), train_size),
        ("test", load_mnist("test"), test_size),
    ):
        out[split] = (torch.from_numpy(x[:size]) - mean) / std, torch.from_numpy(y[:size])
    return out


def _rms(t: torch.Tensor) -> float:
    return float(t.pow(2).mean().sqrt())


# -- (a) signal propagation ------------------------------------------------------------------
@dataclass(frozen=True)
class PropagationConfig:
    depth: int = 50
    width: int = 1024
    batch_size: int = 32  # MNIST test images pushed through each net
    draws: int = 4  # independent weight draws per setting; profiles are RMS over draws
    relu_scales: tuple[float, ...] = (0.5, 1.0, 1.2, 1.5)  # gain = scale · sqrt(2)
    tanh_gains: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
    preserve_within: float = 2.0  # He: max/min std across layers at most this
    decay_factor: float = 100.0  # 0.5× He: std falls by more than this
    theory_tolerance: float = 1.5  # measured/theory std within this factor at every layer

    def __post_init__(self) -> None:
        if self.depth < 2 or self.width < 1 or self.batch_size < 1 or self.draws < 1:
            raise ValueError("depth must be ≥ 2; width, batch_size and draws positive")
        if not {0.5, 1.0, 1.5} <= set(self.relu_scales):
            raise ValueError("relu_scales must contain 0.5, 1.0 and 1.5 (the claims use them)")
        if min(self.relu_scales + self.tanh_gains) <= 0:
            raise ValueError("gains must be positive")


def _settings(cfg: PropagationConfig) -> list[tuple[str, MLPConfig]]:
    base = MLPConfig(width=cfg.width, depth=cfg.depth)
    out = [(f"{m:g}× He", replace(base, gain=m * HE)) for m in cfg.relu_scales]
    out.append(("Glorot", replace(base, init="glorot", gain=1.0)))
    out += [(f"tanh gain {g:g}", replace(base, activation="tanh", gain=g)) for g in cfg.tanh_gains]
    return out


def theory_std(config: MLPConfig, x0: torch.Tensor) -> np.ndarray:
    """Mean-field std(h_l), l = 1..depth: q_1 = s_1² E||x_0||², then the recursion with the
    hidden layers' effective gain s·sqrt(fan_in)."""
    s1 = init_std(config.init, config.in_dim, config.width, config.resolved_gain)
    s = init_std(config.init, config.width, config.width, config.resolved_gain)
    q1 = s1**2 * float(x0.pow(2).sum(1).mean())
    return mean_field_std(
        config.activation, gain=s * math.sqrt(config.width), q1=q1, depth=config.depth
    )


def measure_net(
    config: MLPConfig, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
) -> dict[str, np.ndarray]:
    """Per hidden layer: std of h_l, RMS of ∂L/∂h_l and ||∂L/∂W_l||_F at initialization."""
    net = DeepMLP(config=config, generator=generator)
    logits, preacts = net.forward_trace(x)
    loss = F.cross_entropy(logits, y)
    weights = [layer.weight for layer in net.hidden]
    grads = torch.autograd.grad(loss, preacts + weights)
    d = config.depth
    return {
        "std": np.array([_rms(h.detach()) for h in preacts]),
        "grad_h": np.array([_rms(g) for g in grads[:d]]),
        "grad_w": np.array([float(g.norm()) for g in grads[d:]]),
    }


def run_propagation(run: Run, cfg: PropagationConfig) -> None:
    x, y = mnist(0, cfg.batch_size)["test"]
    settings = _settings(cfg)
    profiles: dict[str, dict[str, np.ndarray]] = {}
    worst_he_draw = 0.0
    bar = run.progress(len(settings) * cfg.draws, "nets")
    for k, (label, config) in enumerate(settings):
        draws = []
        for d in range(cfg.draws):
            gen = torch.Generator().manual_seed(run.seed * 10_007 + k * 101 + d)
            draws.append(measure_net(config, x, y, gen))
            bar.update(1)
        # RMS over weight draws: the recursion predicts the expected second moment
        profiles[label] = {
            key: np.sqrt(np.mean([dr[key] ** 2 for dr in draws], axis=0)) for key in draws[0]
        }
        if label == "1× He":
            worst_he_draw = max(float(dr["std"].max() / dr["std"].min()) for dr in draws)
        profiles[label]["theory"] = theory_std(config, x)
        run.log(
            {
                "key": label,
                "std": profiles[label]["std"].tolist(),
                "grad_w": profiles[label]["grad_w"].tolist(),
            }
        )
    bar.close()

    he, small, large = profiles["1× He"], profiles["0.5× He"], profiles["1.5× He"]
    he_range = float(he["std"].max() / he["std"].min())
    run.claim(
        "he_preserves_std",
        f"He init keeps the ReLU pre-activation std within {cfg.preserve_within:g}x across "
        f"{cfg.depth} layers",
        "eigenvalues 'around one': the signal neither decays nor explodes",
        {
            "max_over_min_std": he_range,
            "worst_single_draw": worst_he_draw,
            "std_first": float(he["std"][0]),
            "std_last": float(he["std"][-1]),
            "within": cfg.preserve_within,
        },
        "max_over_min_std <= within",
    )
    decay = float(small["std"][0] / small["std"][-1])
    run.claim(
        "small_gain_decays",
        f"0.5× He init: the ReLU std decays by more than {cfg.decay_factor:g}x over "
        f"{cfg.depth} layers",
        "too-small random weights: the signal 'decays' layer by layer",
        {
            "std_first_over_last": decay,
            "theory": 2.0 ** (cfg.depth - 1),
            "factor": cfg.decay_factor,
        },
        "std_first_over_last > factor",
    )
    errors = {
        label: float(np.abs(np.log(p["std"] / p["theory"])).max()) for label, p in profiles.items()
    }
    worst = max(errors, key=errors.get)
    run.claim(
        "std_recursion_matches",
        f"measured std(h_l) within {cfg.theory_tolerance:g}x of the mean-field recursion "
        "(ReLU factor sqrt(gain²/2) per layer) at every layer, every gain, ReLU and tanh",
        "Check: std(h_(l+1)) = sqrt(gain²/2) std(h_l) for ReLU",
        {
            "worst_setting": worst,
            "worst_factor": math.exp(errors[worst]),
            "tolerance": cfg.theory_tolerance,
        },
        "worst_factor <= tolerance",
    )
    # ReLU is homogeneous: with every layer (readout too) scaled by m, each weight gradient
    # scales by m^L (m^(L-l+1) backwards times m^(l-1) forwards), up to the change in
    # ∂L/∂logits. Ask for at least half of those orders of magnitude.
    vanish = float((small["grad_w"] / he["grad_w"]).max())
    explode = float((large["grad_w"] / he["grad_w"]).min())
    theory_small, theory_large = 0.5**cfg.depth, 1.5**cfg.depth
    run.claim(
        "gradients_vanish_or_explode",
        "weight gradients at every layer, relative to He's: 0.5× He below sqrt(0.5^L), "
        "1.5× He above sqrt(1.5^L) (half the predicted orders of magnitude)",
        "no gradient can 'latch on' when the signal decays; too large and it explodes",
        {
            "max_ratio_small": vanish,
            "theory_small": theory_small,
            "min_ratio_large": explode,
            "theory_large": theory_large,
        },
        "max_ratio_small < theory_small ** 0.5 and min_ratio_large > theory_large ** 0.5",
    )
    run.summary.update(
        he_std_range=he_range,
        small_gain_decay=decay,
        theory_worst_factor=math.exp(errors[worst]),
        last_over_first_std={
            label: float(p["std"][-1] / p["std"][0]) for label, p in profiles.items()
        },
    )

    layers = np.arange(1, cfg.depth + 1)

    def panel(ax, act: str, key: str, ylabel: str, theory: bool = False) -> None:
        chosen = {k: p for k, p in profiles.items() if k.startswith("tanh") == (act == "tanh")}
        plots.draw_lines(
            ax,
            {label: (layers, p[key]) for label, p in chosen.items()},
            xlabel="layer l",
            ylabel=ylabel,
            title=f"{act}, width {cfg.width}" + (" (dotted: mean-field theory)" if theory else ""),
            logy=True,
        )
        if theory:
            for p in chosen.values():
                ax.plot(layers, p["theory"], "k:", linewidth=1)

    fig, axes = plots.figure(ncols=2)
    panel(axes[0], "relu", "std", "std of pre-activations h_l", theory=True)
    panel(axes[1], "tanh", "std", "std of pre-activations h_l", theory=True)
    plots.save(fig, run.plot_path("std_per_layer.png"))
    fig, axes = plots.figure(ncols=3)
    panel(axes[0], "relu", "grad_h", "RMS of ∂L/∂h_l (backward signal)")
    panel(axes[1], "relu", "grad_w", "||∂L/∂W_l||")
    panel(axes[2], "tanh", "grad_h", "RMS of ∂L/∂h_l (backward signal)")
    plots.save(fig, run.plot_path("grad_per_layer.png"))


# -- (b) training on MNIST -------------------------------------------------------------------
@dataclass(frozen=True)
class MnistConfig:
    depth: int = 20
    width: int = 256
    scales: tuple[float, ...] = (1.0, 0.5)  # gain = scale · sqrt(2); He is 1.0
    steps: int = 600
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    train_size: int = 50_000
    test_size: int = 10_000
    eval_every: int = 100
    final_window: int = 50  # final training loss = mean over the last this many steps
    target_acc: float = 0.90
    chance_band: float = 0.05  # small gain: final loss within this of ln 10

    def __post_init__(self) -> None:
        MLPConfig(depth=self.depth, width=self.width)
        if not {0.5, 1.0} <= set(self.scales):
            raise ValueError("scales must contain 1.0 (He) and 0.5 (the claims compare them)")
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("steps, batch_size and lr must be positive")
        if not 0 < self.final_window <= self.steps:
            raise ValueError("final_window must be in [1, steps]")
        if not 0 < self.train_size <= 50_000 or not 0 < self.test_size <= 10_000:
            raise ValueError("train_size must be in [1, 50000] and test_size in [1, 10000]")


def run_mnist(run: Run, cfg: MnistConfig) -> None:
    data = mnist(cfg.train_size, cfg.test_size)
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    curves: dict[float, list[dict[str, float]]] = {}
    finals: dict[float, dict[str, float]] = {}
    for scale in cfg.scales:
        config = MLPConfig(depth=cfg.depth, width=cfg.width, gain=scale * HE)
        torch.manual_seed(run.seed)
        net = DeepMLP(config=config)
        opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum)

        def step(i: int, net=net, opt=opt) -> dict[str, float]:
            idx = batch_indices(len(x_train), cfg.batch_size, i, run.seed)
            loss = F.cross_entropy(net(x_train[idx]), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return {"loss": loss.item()}

        def evaluate(i: int, net=net) -> dict[str, float]:
            logits = net(x_test)
            return {
                "test_loss": float(F.cross_entropy(logits, y_test)),
                "test_acc": float((logits.argmax(1) == y_test).float().mean()),
            }

        history = fit(
            run,
            f"scale{scale:g}",
            model=net,
            optimizer=opt,
            steps=cfg.steps,
            step=step,
            evaluate=evaluate,
            eval_every=cfg.eval_every,
        )
        curves[scale] = history
        window = [
            h["loss"] for h in history if "loss" in h and h["step"] >= cfg.steps - cfg.final_window
        ]
        finals[scale] = {
            "test_acc": history[-1]["test_acc"],
            "test_loss": history[-1]["test_loss"],
            "train_loss": float(np.mean(window)),  # logged every 10 steps by fit
        }
        run.info(f"{scale:g}× He: {finals[scale]}")

    he, small = finals[1.0], finals[0.5]
    run.claim(
        "he_trains",
        f"{cfg.depth}-layer ReLU MLP from He init reaches test accuracy > {cfg.target_acc:g}",
        "deep nets train once the init scale is right",
        {
            "test_acc": he["test_acc"],
            "final_train_loss": he["train_loss"],
            "target": cfg.target_acc,
        },
        "test_acc > target",
    )
    run.claim(
        "small_gain_stuck",
        f"the same net from 0.5× He init stays at chance: final training loss within "
        f"{cfg.chance_band:g} of ln 10 = {LN10:.4f}",
        "10-layer nets were believed untrainable; the mistake was the init scale",
        {
            "final_train_loss": small["train_loss"],
            "test_acc": small["test_acc"],
            "ln10": LN10,
            "band": cfg.chance_band,
        },
        "abs(final_train_loss - ln10) < band",
    )
    run.summary.update({f"test_acc_{s:g}x_he": f["test_acc"] for s, f in finals.items()})

    fig, (ax_loss, ax_acc) = plots.figure(ncols=2)
    plots.draw_lines(
        ax_loss,
        {
            f"{s:g}× He": (
                [h["step"] for h in c if "loss" in h],
                [h["loss"] for h in c if "loss" in h],
            )
            for s, c in curves.items()
        },
        xlabel="step",
        ylabel="training loss",
        title=f"{cfg.depth}-layer ReLU MLP on MNIST",
    )
    ax_loss.axhline(LN10, color="gray", linestyle=":", linewidth=1)
    plots.draw_lines(
        ax_acc,
        {
            f"{s:g}× He": (
                [h["step"] for h in c if "test_acc" in h],
                [h["test_acc"] for h in c if "test_acc" in h],
            )
            for s, c in curves.items()
        },
        xlabel="step",
        ylabel="test accuracy",
        title="chance = 0.1",
    )
    plots.save(fig, run.plot_path("mnist_training.png"))


# -- (c) RNN state norm vs spectral radius ---------------------------------------------------
@dataclass(frozen=True)
class RNNConfig:
    hidden_size: int = 256
    steps: int = 100
    rhos: tuple[float, ...] = (0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2)
    draws: int = 4  # recurrent matrices per ρ
    batch_size: int = 8  # initial states per matrix
    decay_below: float = 0.9  # ρ ≤ this must shrink the state by > band
    explode_above: float = 1.1  # ρ ≥ this must grow it by > band
    band: float = 100.0
    # Past the transient (t ≥ rate_from) the norm should grow like ρ^t: the measured per-step
    # log growth rate must equal log ρ within rate_tolerance, which resolves ρ = 0.95 and
    # 1.05 (|log ρ| ≈ 0.05) from ρ = 1.
    rate_from: int = 50
    rate_tolerance: float = 0.02

    def __post_init__(self) -> None:
        if self.hidden_size < 2 or self.steps < 1 or self.draws < 1 or self.batch_size < 1:
            raise ValueError("hidden_size ≥ 2; steps, draws and batch_size positive")
        if not 0 <= self.rate_from < self.steps:
            raise ValueError("rate_from must be in [0, steps)")
        if 1.0 not in self.rhos or min(self.rhos) > self.decay_below:
            raise ValueError("rhos must contain 1.0 and a value ≤ decay_below")
        if max(self.rhos) < self.explode_above:
            raise ValueError("rhos must contain a value ≥ explode_above")


def rnn_norms(
    w_hh: torch.Tensor, *, activation: str, steps: int, h0: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Free evolution (zero input) from h0 (B, H). Returns, averaged over the batch, the log of
    ||h_t||/||h_0|| for t = 0..T and the log norm of ∂(u·h_T)/∂h_t for a random unit u
    (backpropagation; 0 at t = T)."""
    rnn = ElmanRNN(w_hh=w_hh, input_size=1, activation=activation)
    h0 = h0.clone().requires_grad_(True)
    hs = rnn.states(torch.zeros(steps, h0.shape[0], 1, dtype=w_hh.dtype), h0)
    u = torch.nn.functional.normalize(torch.randn_like(h0), dim=1)  # (B, H)
    grads = torch.autograd.grad((hs[-1] * u).sum(), hs)
    fwd = torch.stack([h.detach().norm(dim=1) for h in hs]) / h0.detach().norm(dim=1)  # (T+1, B)
    bwd = torch.stack([g.norm(dim=1) for g in grads])  # (T+1, B); 1 at t = T
    return fwd.log().mean(1).numpy(), bwd.log().mean(1).numpy()


def run_rnn(run: Run, cfg: RNNConfig) -> None:
    results: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    cases = [(act, f"ρ={rho:g}", rho, "gaussian") for act in ("linear", "tanh") for rho in cfg.rhos]
    cases += [(act, "orthogonal", 1.0, "orthogonal") for act in ("linear", "tanh")]
    for act, label, rho, kind in cases:
        fwd, bwd = [], []
        for d in range(cfg.draws):
            gen = torch.Generator().manual_seed(run.seed * 7919 + d)
            w = recurrent_matrix(cfg.hidden_size, rho=rho, kind=kind, generator=gen)
            h0 = torch.randn(cfg.batch_size, cfg.hidden_size, dtype=w.dtype, generator=gen)
            f, b = rnn_norms(w, activation=act, steps=cfg.steps, h0=h0)
            fwd.append(f)
            bwd.append(b)
        # geometric mean over matrices and initial states
        results[(act, label)] = (np.exp(np.mean(fwd, 0)), np.exp(np.mean(bwd, 0)))
        run.log({"key": f"{act} {label}", "state_norm": results[(act, label)][0].tolist()})

    final = {key: float(v[0][-1]) for key, v in results.items()}
    small = {r: final[("linear", f"ρ={r:g}")] for r in cfg.rhos if r <= cfg.decay_below}
    large = {r: final[("linear", f"ρ={r:g}")] for r in cfg.rhos if r >= cfg.explode_above}
    run.claim(
        "rnn_decays_or_explodes",
        f"linear RNN, {cfg.steps} steps: ||h_T||/||h_0|| < 1/{cfg.band:g} for ρ ≤ "
        f"{cfg.decay_below:g} and > {cfg.band:g} for ρ ≥ {cfg.explode_above:g}",
        "too small: the signal decays; too large: it explodes",
        {
            **{f"rho{r:g}": v for r, v in {**small, **large}.items()},
            **{f"theory_rho{r:g}": r**cfg.steps for r in {**small, **large}},
            "largest_decaying": max(small.values()),
            "smallest_exploding": min(large.values()),
            "band": cfg.band,
        },
        "largest_decaying < 1 / band and smallest_exploding > band",
    )
    span = cfg.steps - cfg.rate_from
    norms = {r: results[("linear", f"ρ={r:g}")][0] for r in cfg.rhos}
    rates = {r: float(np.log(v[-1] / v[cfg.rate_from]) / span) for r, v in norms.items()}
    deviation = max(abs(rate - math.log(r)) for r, rate in rates.items())
    run.claim(
        "rnn_rate_is_log_rho",
        f"linear RNN: the per-step log growth of ||h_t|| over steps {cfg.rate_from}–{cfg.steps} "
        f"equals log ρ within {cfg.rate_tolerance:g} for every ρ (no exponential trend at ρ = 1)",
        "the state scales with the eigenvalues: a 'sweet spot' where they are 'around one'",
        {
            **{f"rate_rho{r:g}": v for r, v in rates.items()},
            "max_abs_deviation": deviation,
            "tolerance": cfg.rate_tolerance,
        },
        "max_abs_deviation < tolerance",
    )
    one, ortho = final[("linear", "ρ=1")], final[("linear", "orthogonal")]
    run.claim(
        "orthogonal_keeps_norm",
        f"orthogonal W (every eigenvalue on the unit circle) keeps ||h_T|| = ||h_0|| over "
        f"{cfg.steps} steps (|ratio - 1| < 1e-9); Gaussian W at ρ = 1 loses the components on "
        "its interior eigenvalues",
        "eigenvalues 'around one'",
        {"orthogonal": ortho, "gaussian_rho1": one},
        "abs(orthogonal - 1) < 1e-9",
    )
    tanh = {label: v for (act, label), v in results.items() if act == "tanh"}
    run.summary.update(
        rho1_state_ratio=one,
        max_rate_deviation=deviation,
        tanh_state_ratio={label: float(f[-1]) for label, (f, _) in tanh.items()},
        tanh_grad_ratio={label: float(b[0]) for label, (_, b) in tanh.items()},
    )
    run.notes.append(
        "tanh RNN, reported not asserted: summary keys tanh_state_ratio (||h_T||/||h_0||) and "
        "tanh_grad_ratio (||∂(u·h_T)/∂h_0||, u a random unit vector) per spectral radius."
    )

    t = np.arange(cfg.steps + 1)
    fig, axes = plots.figure(ncols=3)
    for ax, act, idx, ylabel in (
        (axes[0], "linear", 0, "||h_t|| / ||h_0||"),
        (axes[1], "tanh", 0, "||h_t|| / ||h_0||"),
        (axes[2], "tanh", 1, "||∂(u·h_T)/∂h_t||"),
    ):
        plots.draw_lines(
            ax,
            {label: (t, v[idx]) for (a, label), v in results.items() if a == act},
            xlabel="step t",
            ylabel=ylabel,
            title=f"{act} RNN, H={cfg.hidden_size}" + (" (backprop from T)" if idx else ""),
            logy=True,
        )
    plots.save(fig, run.plot_path("rnn_norm_vs_step.png"))


# -- (d) singular values of products of random matrices -------------------------------------
@dataclass(frozen=True)
class ProductsConfig:
    n: int = 128
    depths: tuple[int, ...] = (1, 2, 5, 10, 20, 50)
    near_one: float = 2.0  # "near one": within this factor of 1
    max_fraction_deep: float = 0.1  # Gaussian: at the deepest product fewer than this near one

    def __post_init__(self) -> None:
        if self.n < 2 or min(self.depths) < 1:
            raise ValueError("n ≥ 2 and depths ≥ 1")
        if 1 not in self.depths or len(self.depths) < 2:
            raise ValueError("depths must contain 1 and a deeper product")


def run_products(run: Run, cfg: ProductsConfig) -> None:
    gen = torch.Generator().manual_seed(run.seed)
    spectra = {
        kind: product_singular_values(cfg.n, cfg.depths, kind=kind, generator=gen)
        for kind in ("gaussian", "orthogonal")
    }

    def near(s: torch.Tensor) -> float:
        return float(((s > 1 / cfg.near_one) & (s < cfg.near_one)).double().mean())

    deepest = max(cfg.depths)
    gauss = spectra["gaussian"]
    ortho_dev = max(float((s - 1).abs().max()) for s in spectra["orthogonal"].values())
    run.claim(
        "orthogonal_isometry",
        f"every singular value of a product of up to {deepest} orthogonal matrices is 1 "
        "(|s - 1| < 1e-9)",
        "eigenvalues exactly 'around one' at any depth",
        {"max_abs_deviation": ortho_dev},
        "max_abs_deviation < 1e-9",
    )
    fractions = {f"depth{d}": near(gauss[d]) for d in cfg.depths}
    run.claim(
        "gaussian_spectrum_spreads",
        f"Gaussian products (E||Wx||² = ||x||²): the fraction of singular values within "
        f"{cfg.near_one:g}x of 1 drops below {cfg.max_fraction_deep:g} at depth {deepest}",
        "the right scale on average is not enough in depth: the spectrum spreads",
        {
            **fractions,
            "median_deepest": float(gauss[deepest].median()),
            "max_fraction": cfg.max_fraction_deep,
        },
        f"depth{deepest} < max_fraction < depth{min(cfg.depths)}",
    )
    lam = lyapunov_exponents(cfg.n)
    median, predicted = float(gauss[deepest].median()), float(torch.exp(deepest * lam[cfg.n // 2]))
    run.claim(
        "median_matches_lyapunov",
        f"median singular value at depth {deepest} within 2x of Newman's exp(L λ_(n/2))",
        "theory: Newman 1986, Lyapunov exponents of Gaussian matrix products",
        {"measured": median, "theory": predicted},
        "abs(log(measured / theory)) < log(2)",
    )
    run.summary.update(fraction_near_one=fractions, orthogonal_max_deviation=ortho_dev)

    idx = np.arange(1, cfg.n + 1) / cfg.n
    floor = 1e-16
    fig, (ax_g, ax_o) = plots.figure(ncols=2)
    series = {f"L={d}": (idx, gauss[d].clamp_min(floor).numpy()) for d in cfg.depths}
    series[f"L={deepest} theory exp(Lλ_i)"] = (
        idx,
        torch.exp(deepest * lam).clamp_min(floor).numpy(),
    )
    plots.draw_lines(
        ax_g,
        series,
        xlabel="i / n",
        ylabel="singular value s_i",
        title=f"product of L Gaussian {cfg.n}×{cfg.n} matrices (float64 floor ~1e-15)",
        logy=True,
        styles={f"L={deepest} theory exp(Lλ_i)": "k:"},
    )
    plots.draw_lines(
        ax_o,
        {f"L={d}": (idx, s.numpy()) for d, s in spectra["orthogonal"].items()},
        xlabel="i / n",
        ylabel="singular value s_i",
        title=f"product of L orthogonal {cfg.n}×{cfg.n} matrices",
        logy=True,
    )
    ax_o.set_ylim(0.1, 10)
    plots.save(fig, run.plot_path("singular_values.png"))


PAPER = Paper(
    slug="initialization_scale",
    title="On the scale of random initialization (interview)",
    authors="Ilya Sutskever",
    year=2015,
    arxiv="",
    experiments=(
        Experiment(
            name="signal_propagation",
            description="activation std and gradient norm per layer of 50-layer MLPs vs gain",
            presets={
                "smoke": PropagationConfig(depth=10, width=128, batch_size=16, draws=1),
                "quick": PropagationConfig(),
                "full": PropagationConfig(width=2048, batch_size=128, draws=8),
            },
            run=run_propagation,
            quick_minutes=0.25,
            datasets=("mnist",),
        ),
        Experiment(
            name="mnist_depth",
            description="20-layer ReLU MLP on MNIST: He init trains, 0.5× He stays at chance",
            presets={
                "smoke": MnistConfig(
                    depth=4, width=32, steps=20, eval_every=10, final_window=10, test_size=500
                ),
                "quick": MnistConfig(),
                "full": MnistConfig(
                    depth=30, width=512, scales=(0.5, 1 / math.sqrt(2), 1.0), steps=10_000
                ),
            },
            run=run_mnist,
            quick_minutes=0.2,
            datasets=("mnist",),
        ),
        Experiment(
            name="rnn_spectral_radius",
            description="RNN hidden-state norm over 100 steps vs the recurrent spectral radius",
            presets={
                "smoke": RNNConfig(hidden_size=32, steps=100, draws=1, batch_size=2),
                "quick": RNNConfig(),
                "full": RNNConfig(hidden_size=1024, draws=16),
            },
            run=run_rnn,
            quick_minutes=0.05,
        ),
        Experiment(
            name="random_products",
            description="singular values of products of Gaussian vs orthogonal random matrices",
            presets={
                "smoke": ProductsConfig(n=32, depths=(1, 5, 50)),
                "quick": ProductsConfig(),
                "full": ProductsConfig(n=512, depths=(1, 2, 5, 10, 20, 50, 100)),
            },
            run=run_products,
            quick_minutes=0.02,
        ),
    ),
)
