"""ResNet (He et al. 2015): exact parameter counts, the shortcut's behaviour, augmentation."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sutskever30.cli import main
from sutskever30.data.cifar10 import pad_crop_flip
from sutskever30.nn.classifier import recalibrate_bn
from sutskever30.papers.resnet import training
from sutskever30.papers.resnet.experiment import PAPER, SMOKE, TABLE6_PARAMS_M, DegradationConfig
from sutskever30.papers.resnet.model import (
    BasicBlock,
    CifarResNet,
    ImageNetResNet,
    ResNetConfig,
    count_parameters,
)
from sutskever30.papers.resnet.training import load_data, subsets

from .conftest import has_dataset
from .scratch import scratch_run


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110, 1202])
def test_cifar_parameter_counts_match_table6(depth):
    n = count_parameters(CifarResNet(ResNetConfig(depth=depth)))
    shown = TABLE6_PARAMS_M[depth]
    decimals = 2 if shown < 1 else 1  # Table 6 shows 0.27M ... 0.85M, then 1.7M, 19.4M
    assert round(n / 1e6, decimals) == shown


def test_exact_counts_and_option_a_adds_no_parameters():
    resnet = CifarResNet(ResNetConfig(depth=20))
    plain = CifarResNet(ResNetConfig(depth=20, residual=False))
    assert count_parameters(resnet) == count_parameters(plain) == 269_722
    assert count_parameters(CifarResNet(ResNetConfig(depth=20, shortcut="B"))) > 269_722


@pytest.mark.parametrize(
    "depth,params",
    # torchvision's published counts for the same Table 1 architectures (option B).
    [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032), (101, 44_549_160), (152, 60_192_808)],
)
def test_imagenet_parameter_counts(depth, params):
    assert count_parameters(ImageNetResNet(depth=depth)) == params


def test_number_of_weighted_layers_is_6n_plus_2():
    model = CifarResNet(ResNetConfig(depth=56))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    fcs = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(convs) + len(fcs) == 56


def test_identity_shortcut_passes_input_when_residual_is_zero():
    block = BasicBlock(c_in=16, c_out=16, stride=1, residual=True, shortcut="A").eval()
    torch.nn.init.zeros_(block.bn2.weight)  # F(x) = 0
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(block(x), F.relu(x))


def test_option_a_subsamples_and_zero_pads():
    block = BasicBlock(c_in=16, c_out=32, stride=2, residual=True, shortcut="A").eval()
    torch.nn.init.zeros_(block.bn2.weight)
    x = torch.randn(2, 16, 8, 8)
    y = block(x)
    assert y.shape == (2, 32, 4, 4)
    torch.testing.assert_close(y[:, :16], F.relu(x[:, :, ::2, ::2]))
    torch.testing.assert_close(y[:, 16:], torch.zeros(2, 16, 4, 4))


def test_plain_block_has_no_shortcut():
    block = BasicBlock(c_in=16, c_out=16, stride=1, residual=False, shortcut="A").eval()
    torch.nn.init.zeros_(block.bn2.weight)
    torch.nn.init.zeros_(block.bn2.bias)
    assert torch.count_nonzero(block(torch.randn(2, 16, 8, 8))) == 0


def test_bad_depth_is_rejected():
    with pytest.raises(ValueError, match="6n\\+2"):
        ResNetConfig(depth=21)


def test_augment_is_a_crop_of_the_padded_image_or_its_mirror():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32)
    out = pad_crop_flip(x, torch.Generator().manual_seed(0))
    padded = F.pad(x, (4, 4, 4, 4))
    for b in range(2):
        found = any(
            torch.equal(out[b], crop) or torch.equal(out[b], crop.flip(-1))
            for dy in range(9)
            for dx in range(9)
            for crop in [padded[b, :, dy : dy + 32, dx : dx + 32]]
        )
        assert found
    assert torch.equal(out, pad_crop_flip(x, torch.Generator().manual_seed(0)))


def test_bn_recalibration_averages_the_batch_statistics_and_leaves_the_model_alone():
    """Every BN's running mean/var become the plain average over the calibration batches of
    its input's per-batch mean and unbiased variance; the trained model is not touched."""
    model = CifarResNet(ResNetConfig(depth=8))
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:  # stale running statistics, as after fast-moving training
        bn.running_mean.fill_(3.0)
        bn.running_var.fill_(7.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(3 * 8, 3, 32, 32)
    net = recalibrate_bn(model, x, 8, 3)
    assert not net.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k

    seen: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(bns))}
    hooks = [
        bn.register_forward_pre_hook(lambda _m, args, i=i: seen[i].append(args[0].detach()))
        for i, bn in enumerate(bns)
    ]
    model.train()
    with torch.no_grad():
        for b in range(3):
            model(x[8 * b : 8 * (b + 1)])
    for h in hooks:
        h.remove()
    new_bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for i, bn in enumerate(new_bns):
        means = torch.stack([a.mean(dim=(0, 2, 3)) for a in seen[i]])  # (batches, C)
        variances = torch.stack([a.var(dim=(0, 2, 3), unbiased=True) for a in seen[i]])
        torch.testing.assert_close(bn.running_mean, means.mean(0), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(bn.running_var, variances.mean(0), atol=1e-5, rtol=1e-4)


def test_held_out_subsets_are_disjoint_fixed_and_shuffled():
    cfg = DegradationConfig(train_size=49_000, val_size=1_000, test_size=2_000)
    train, val, test = subsets(cfg, 50_000, 10_000)
    assert (len(train), len(val), len(test)) == (49_000, 1_000, 2_000)
    assert not set(train.tolist()) & set(val.tolist())
    assert len(set(test.tolist())) == 2_000
    again = subsets(cfg, 50_000, 10_000)
    assert all(torch.equal(a, b) for a, b in zip((train, val, test), again, strict=True))
    # The image folder stores CIFAR-10 class by class (5,000 / 1,000 per class): a prefix
    # would hold one or two classes; these subsets hold all ten.
    for idx, per_class in ((val, 5_000), (test, 1_000)):
        assert len(torch.unique(idx // per_class)) == 10


def test_images_are_centered_on_the_training_mean(monkeypatch):
    def sorted_by_class(split):
        n = 50_000 if split == "train" else 10_000
        gen = np.random.default_rng(0)
        return gen.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.arange(n) * 10 // n

    monkeypatch.setattr(training, "load_cifar10", sorted_by_class)
    data = load_data(DegradationConfig(train_size=500, val_size=200, test_size=300))
    assert data["train"][0].shape == (500, 3, 32, 32)
    torch.testing.assert_close(data["train"][0].mean(0), torch.zeros(3, 32, 32), atol=1e-5, rtol=0)
    assert len(torch.unique(data["test"][1])) == 10


def test_bench_times_the_experiments_own_training_step(tmp_path):
    cases = PAPER.bench(scratch_run(tmp_path, "resnet", "degradation", SMOKE))
    assert [c.name for c in cases] == ["plain8", "plain14", "resnet8", "resnet14"]
    for case in cases:
        before = [p.detach().clone() for p in case.model.parameters()]
        assert np.isfinite(case.step(0)["loss"])
        assert any(
            not torch.equal(a, p) for a, p in zip(before, case.model.parameters(), strict=True)
        )


def test_one_batch_overfits():
    torch.manual_seed(0)
    model = CifarResNet(ResNetConfig(depth=8))
    x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(60):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


def _summary(out, *extra):
    import json

    assert (
        main(
            ["run", "resnet", "--preset", "smoke", "--out", str(out), "-q", "--no-publish", *extra]
        )
        == 0
    )
    (path,) = out.glob("resnet/degradation/smoke-*/results.json")
    return json.loads(path.read_text())["summary"]


def test_resume_after_kill_gives_the_same_results(tmp_path, monkeypatch):
    uninterrupted = _summary(tmp_path / "a")
    calls = {"n": 0}
    real_step = torch.optim.SGD.step

    def dying_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # partway through the second network
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", dying_step)
    assert (
        main(
            [
                "run",
                "resnet",
                "--preset",
                "smoke",
                "--out",
                str(tmp_path / "b"),
                "-q",
                "--no-publish",
            ]
        )
        == 130
    )
    monkeypatch.setattr(torch.optim.SGD, "step", real_step)
    assert _summary(tmp_path / "b", "--resume") == uninterrupted


@pytest.fixture(scope="module")
def quick_claims(tmp_path_factory):
    import json

    out = tmp_path_factory.mktemp("resnet")
    args = ["run", "resnet", "--preset", "quick", "--out", str(out), "-q", "--no-publish"]
    assert main(args) == 0  # the quick preset's 3 seeds
    (path,) = out.glob("resnet/degradation/quick-*/results.json")
    return {c["id"]: c for c in json.loads(path.read_text())["claims"] if c["asserted"]}


_RESNET56_BEHIND = pytest.mark.xfail(
    reason="does not hold at quick scale (README: after 270 iterations ResNet-56 is still "
    "behind ResNet-20 in training error)",
    strict=False,
)


@pytest.mark.skipif(not has_dataset("cifar10"), reason="no CIFAR-10 copy")
@pytest.mark.slow
@pytest.mark.parametrize(
    "claim_id",
    [
        "plain_degrades",
        "resnet_beats_plain",
        pytest.param("resnet_deeper_not_worse", marks=_RESNET56_BEHIND),
        pytest.param("resnet_deeper_lower", marks=_RESNET56_BEHIND),
    ],
)
def test_quick_degradation_claims_hold(quick_claims, claim_id):
    assert quick_claims[claim_id]["holds"], quick_claims[claim_id]
