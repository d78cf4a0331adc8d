"""AlexNet: the parameter count, LRN against nn.LocalResponseNorm and by hand, the towers
(grouped convolutions and per-tower LRN), the initialization, PCA colour augmentation, the
ten test crops, the image-folder loader on real CIFAR-10 JPEGs, the Fig. 1 search's
censoring and pruning, and the quick claims (slow)."""

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sutskever30.cli import main
from sutskever30.core.errors import DataMissingError
from sutskever30.core.results import holds
from sutskever30.data.imagefolder import ImageFolder, load_image
from sutskever30.papers.alexnet.experiments import ablations, dropout, imagenet, relu_tanh
from sutskever30.papers.alexnet.model import (
    ONE_BIAS_LAYERS,
    AlexNet,
    AlexNetConfig,
    Fig1Config,
    Fig1Net,
    cifar_config,
    count_neurons,
    count_parameters,
    local_response_norm,
    pca_jitter,
    random_crop_flip,
    rgb_eigen,
    ten_crop_probabilities,
    ten_crops,
    torch_lrn_equivalent,
)
from tests.conftest import SHARED_DATA, has_dataset

TINY = cifar_config(channels=(8, 8, 12, 12, 8), hidden=16)


# -- exact facts -------------------------------------------------------------------------------


def test_parameter_count_is_the_papers():
    with torch.device("meta"):
        net = AlexNet()
    assert count_parameters(net) == 60_965_224
    assert net.config.map_sizes == (55, 27, 27, 13, 13, 13, 13, 6)
    assert net.fc6.in_features == 9216 and net.fc8.out_features == 1000
    assert count_neurons(net.config) == 659_272  # ≈ the paper's 650,000


def test_forward_shape_at_224():
    net = AlexNet(config=AlexNetConfig(num_classes=7)).eval()
    assert net(torch.randn(1, 3, 224, 224)).shape == (1, 7)


def test_non_overlapping_pooling_keeps_the_cifar_map_sizes():
    assert cifar_config().map_sizes == cifar_config(overlapping_pool=False).map_sizes
    assert cifar_config(overlapping_pool=False).pool == (2, 2) and cifar_config().pool == (3, 2)


@pytest.mark.parametrize(
    "bad",
    [
        dict(channels=(95, 256, 384, 384, 256)),
        dict(dropout=1.0),
        dict(image_size=20),
        dict(activation="sigmoid"),
        dict(num_classes=1),
    ],
)
def test_config_rejects_meaningless_values(bad):
    with pytest.raises(ValueError):
        AlexNetConfig(**bad)


@pytest.mark.parametrize(
    "make",
    [
        lambda: relu_tanh.ReluTanhConfig(window=10, max_steps=5),
        lambda: relu_tanh.ReluTanhConfig(lrs=()),
        lambda: dropout.DropoutConfig(dropout=0.0),
        lambda: dropout.DropoutConfig(train_size=50_000, val_size=1),
        lambda: ablations.AblationConfig(arms=("no_lrn",)),
        lambda: imagenet.ImageNetConfig(crop=300),
    ],
)
def test_experiment_configs_reject_meaningless_values(make):
    with pytest.raises(ValueError):
        make()


def test_step_batches_follow_the_step_index():
    from sutskever30.core.train import batch_indices

    got = list(imagenet.StepBatches(100, 8, 3, start=5, steps=8))
    assert got == [batch_indices(100, 8, i, 3).tolist() for i in (5, 6, 7)]


# -- local response normalization -------------------------------------------------------------


def test_lrn_equals_torch_with_alpha_times_n():
    a = 30 * torch.randn(2, 16, 5, 5, dtype=torch.float64)  # large enough for α·Σa² to matter
    ours = local_response_norm(a)
    torch.testing.assert_close(ours, torch_lrn_equivalent()(a), rtol=1e-12, atol=1e-12)
    naive = torch.nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)(a)
    assert not torch.allclose(ours, naive, rtol=1e-3)  # PyTorch's α is the paper's α·n


def test_lrn_matches_the_formula_by_hand():
    k, n, alpha, beta = 2.0, 5, 1e-4, 0.75
    a = 20 * torch.randn(1, 7, 2, 3, dtype=torch.float64)
    b = local_response_norm(a)
    N = a.shape[1]
    for i in range(N):
        lo, hi = max(0, i - n // 2), min(N - 1, i + n // 2)
        s = (a[0, lo : hi + 1] ** 2).sum(0)
        torch.testing.assert_close(b[0, i], a[0, i] / (k + alpha * s) ** beta, rtol=1e-12, atol=0)


def test_lrn_towers_do_not_share_neighbourhoods():
    a = 20 * torch.randn(2, 12, 3, 3, dtype=torch.float64)
    two = local_response_norm(a, groups=2)
    halves = torch.cat([torch_lrn_equivalent()(h) for h in a.chunk(2, dim=1)], dim=1)
    torch.testing.assert_close(two, halves, rtol=1e-12, atol=1e-12)
    edge = slice(4, 8)  # the maps within n/2 of the tower boundary
    assert not torch.allclose(two[:, edge], local_response_norm(a)[:, edge])


def test_lrn_rejects_an_even_window():
    with pytest.raises(ValueError, match="odd"):
        local_response_norm(torch.ones(1, 4, 1, 1), n=4)


# -- the towers -------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", ["conv2", "conv4", "conv5"])
def test_grouped_layers_see_only_their_own_tower(layer):
    net = AlexNet(config=TINY)
    conv = getattr(net, layer)
    x = torch.randn(2, conv.in_channels, 7, 7, requires_grad=True)
    conv(x)[:, : conv.out_channels // 2].sum().backward()  # tower 0's outputs
    half = conv.in_channels // 2
    assert x.grad[:, :half].abs().sum() > 0
    assert x.grad[:, half:].abs().sum() == 0


@pytest.mark.parametrize("layer", ["conv3", "fc6"])
def test_conv3_and_fc6_see_both_towers(layer):
    net = AlexNet(config=TINY)
    module = getattr(net, layer)
    shape = (2, module.in_channels, 7, 7) if layer == "conv3" else (2, module.in_features)
    x = torch.randn(*shape, requires_grad=True)
    module(x)[:, 0].sum().backward()  # one output unit of tower 0
    half = x.shape[1] // 2
    assert x.grad[:, :half].abs().sum() > 0 and x.grad[:, half:].abs().sum() > 0


def test_towers_through_the_network():
    """Tower 0 of conv2 never sees conv1's tower-1 maps, LRN included."""
    net = AlexNet(config=TINY)
    h1 = torch.randn(1, TINY.channels[0], 13, 13, requires_grad=True)  # pool1's maps
    out = net.norm(F.relu(net.conv2(h1)))
    out[:, : TINY.channels[1] // 2].sum().backward()
    assert h1.grad[:, TINY.channels[0] // 2 :].abs().sum() == 0


# -- initialization ---------------------------------------------------------------------------


def test_paper_initialization():
    net = AlexNet(config=cifar_config(init_std=0.01, channels=(64, 64, 64, 64, 64)))
    for name, module in net.named_children():
        if not hasattr(module, "weight"):
            continue
        assert module.weight.mean().abs() < 2e-3 and abs(module.weight.std() - 0.01) < 1e-3
        bias = 1.0 if name in ONE_BIAS_LAYERS else 0.0
        assert torch.equal(module.bias, torch.full_like(module.bias, bias)), name
    assert set(ONE_BIAS_LAYERS) == {"conv2", "conv4", "conv5", "fc6", "fc7"}


# -- PCA colour augmentation -------------------------------------------------------------------


def _pixels(n=4000):
    mix = torch.tensor([[1.0, 0.9, 0.8], [0.0, 0.3, 0.2], [0.0, 0.0, 0.1]])
    return torch.randn(n, 3) @ mix


def test_rgb_eigen_reconstructs_the_covariance():
    pixels = _pixels()
    eigvals, eigvecs = rgb_eigen(pixels)
    cov = torch.cov(pixels.T)
    torch.testing.assert_close(eigvecs @ torch.diag(eigvals) @ eigvecs.T, cov, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(eigvecs.T @ eigvecs, torch.eye(3), rtol=0, atol=1e-5)
    assert eigvals[0] >= eigvals[1] >= eigvals[2] > 0


def test_pca_jitter_adds_alpha_lambda_along_each_eigenvector():
    eigvals, eigvecs = rgb_eigen(_pixels())
    images = torch.rand(2, 3, 4, 5)
    alpha = torch.tensor([[0.1, -0.2, 0.05], [0.0, 0.0, 0.0]])
    out = pca_jitter(images, eigvals, eigvecs, alpha)
    assert out.shape == images.shape
    shift = (out - images).permute(0, 2, 3, 1).reshape(2, -1, 3)  # (B, pixels, 3)
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-6)  # one shift per image
    # the shift's coordinates in the eigenbasis are α_i λ_i
    torch.testing.assert_close(shift[:, 0] @ eigvecs, alpha * eigvals, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(out[1], images[1])


# -- crops --------------------------------------------------------------------------------------


def test_ten_crops_positions_and_reflections():
    images = torch.arange(2 * 3 * 6 * 7, dtype=torch.float32).reshape(2, 3, 6, 7)
    crops = ten_crops(images, 4)
    assert crops.shape == (10, 2, 3, 4, 4)
    expected = [
        images[..., :4, :4],
        images[..., :4, 3:],
        images[..., 2:, :4],
        images[..., 2:, 3:],
        images[..., 1:5, 1:5],
    ]
    for i, patch in enumerate(expected):
        assert torch.equal(crops[i], patch), i
        assert torch.equal(crops[5 + i], patch.flip(-1)), i


def test_ten_crop_probabilities_average_the_softmax():
    net = Fig1Net(config=Fig1Config(widths=(4, 4, 4))).eval()
    images = torch.randn(3, 3, 36, 36)
    probs = ten_crop_probabilities(net, images, 32)
    by_hand = torch.stack([net(c).softmax(-1) for c in ten_crops(images, 32)]).mean(0)
    torch.testing.assert_close(probs, by_hand)
    torch.testing.assert_close(probs.sum(-1), torch.ones(3))


def test_random_crop_flip_takes_a_patch_or_its_reflection():
    images = torch.arange(4 * 1 * 6 * 6, dtype=torch.float32).reshape(4, 1, 6, 6)
    out = random_crop_flip(images, 4, torch.Generator().manual_seed(3))
    for img, crop in zip(images, out, strict=True):
        patches = [img[:, y : y + 4, x : x + 4] for y in range(3) for x in range(3)]
        assert any(torch.equal(crop, p) or torch.equal(crop, p.flip(-1)) for p in patches)


# -- image-folder loader on real CIFAR-10 JPEGs --------------------------------------------------

CIFAR_TREE = SHARED_DATA / "cifar10-images"
needs_cifar = pytest.mark.skipif(not CIFAR_TREE.is_dir(), reason="no CIFAR-10 image tree")


def _tiny_tree(root, classes=("cat", "dog", "ship"), per_class=2):
    for split, source in (("train", "train"), ("val", "test")):
        for name in classes:
            (root / split / name).mkdir(parents=True)
            files = sorted((CIFAR_TREE / source / name).iterdir())[:per_class]
            for f in files:
                shutil.copy(f, root / split / name / f"{f.stem}.JPEG")
    return root


@needs_cifar
def test_image_folder_reads_an_imagenet_layout(tmp_path):
    root = _tiny_tree(tmp_path / "imagenet")
    train = ImageFolder(root, "train", size=40)
    val = ImageFolder(root, "val", size=40, classes=train.classes)
    assert train.classes == ["cat", "dog", "ship"] and len(train) == 6 and len(val) == 6
    assert train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    image, label = train[2]
    assert image.shape == (3, 40, 40) and image.dtype == torch.uint8 and label == 1
    first = train.samples[0][0]
    with Image.open(first) as img:  # 32×32 → shorter side 40, nothing left to crop
        ref = np.asarray(img.convert("RGB").resize((40, 40), Image.BILINEAR))
    assert np.array_equal(
        image.permute(1, 2, 0).numpy(), np.asarray(load_image(train.samples[2][0], 40))
    )
    assert np.array_equal(load_image(first, 40), ref)


@needs_cifar
def test_load_image_rescales_the_shorter_side_and_crops_the_centre(tmp_path):
    src = sorted((CIFAR_TREE / "train" / "cat").iterdir())[0]
    with Image.open(src) as img:
        wide = img.convert("RGB").resize((64, 32))
    path = tmp_path / "wide.png"
    wide.save(path)
    out = load_image(path, 16)  # 64×32 → 32×16, then the central 16×16
    ref = np.asarray(wide.resize((32, 16), Image.BILINEAR))[:, 8:24]
    assert out.shape == (16, 16, 3) and np.array_equal(out, ref)


def test_missing_tree_is_one_clear_error(tmp_path):
    with pytest.raises(DataMissingError, match=r"imagenet/train.*<wnid>"):
        ImageFolder(tmp_path / "imagenet", "train")
    (tmp_path / "empty" / "train" / "n01440764").mkdir(parents=True)
    with pytest.raises(DataMissingError, match="no images"):
        ImageFolder(tmp_path / "empty", "train")


def test_imagenet_run_without_a_tree_says_where_to_put_it(tmp_path, capsys):
    code = main(
        [
            "run",
            "alexnet:imagenet",
            "--preset",
            "full",
            "--set",
            f"tree={tmp_path}/none",
            "--out",
            str(tmp_path / "runs"),
            "-q",
            "--no-publish",
        ]
    )
    assert code != 0
    assert f"{tmp_path}/none/train" in capsys.readouterr().err


# -- Fig. 1: the search --------------------------------------------------------------------------


def test_search_caps_later_rates_at_the_best_time(monkeypatch):
    cfg = relu_tanh.ReluTanhConfig(lrs=(0.1, 0.2, 0.3), max_steps=1000, window=5)
    reached = {0.1: None, 0.2: 300, 0.3: 200}
    budgets = {}

    def fake(run, cfg, activation, lr, data, steps):
        budgets[lr] = steps
        got = reached[lr] if reached[lr] is not None and reached[lr] <= steps else None
        return {"steps": got, "diverged": False, "ran": got or steps, "curve": ([], [])}

    monkeypatch.setattr(relu_tanh, "time_to_target", fake)
    found = relu_tanh.search(None, cfg, "relu", None)
    assert budgets == {0.1: 1000, 0.2: 1000, 0.3: 300}
    assert found["best"] == 200 and found["best_lr"] == 0.3


def test_censored_runs_count_as_the_cap():
    rule = "tanh_steps >= 2 * relu_steps + spread"
    assert holds(rule, {"relu_steps": 400, "tanh_steps": 1000})  # tanh censored at 1000
    assert not holds(rule, {"relu_steps": 1000, "tanh_steps": 1000})  # both censored
    assert not holds(rule, {"relu_steps": 1000, "tanh_steps": 600})  # ReLU censored


def test_trailing_mean():
    x, y = relu_tanh.trailing([1.0, 0.0, 1.0, 1.0], 2)
    assert x == [2, 3, 4] and y == [0.5, 0.5, 1.0]


def test_fig1_net_init_is_cuda_convnets():
    torch.manual_seed(0)
    net = Fig1Net(config=Fig1Config(widths=(32, 32, 64)))
    layers = (net.conv1, net.conv2, net.conv3, net.fc)
    for layer, std in zip(layers, (0.0255, 0.01, 0.01, 0.01), strict=True):
        assert abs(layer.weight.std().item() / std - 1) < 0.05
        assert abs(layer.weight.mean().item()) < 0.1 * std
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))


def test_regime_counts_epochs_and_keeps_censored_runs_empty():
    cfg = relu_tanh.ReluTanhConfig(train_size=1_000, batch_size=128, eval_size=10)
    found = {
        "relu": {"best": 21, "best_lr": 0.03, "runs": {0.03: {"heldout_err": 0.4}}},
        "tanh": {"best": None, "best_lr": None, "runs": {0.1: {"heldout_err": None}}},
    }
    assert relu_tanh.regime(cfg, found) == {
        "relu_epochs": 3.0,  # 7 full batches of 128 per epoch of 1,000 images
        "relu_heldout_err": 0.4,
        "tanh_epochs": None,
        "tanh_heldout_err": None,
    }


def test_fig1_net_shapes_and_activation():
    x = torch.randn(2, 3, 32, 32)
    for activation in ("relu", "tanh"):
        net = Fig1Net(config=Fig1Config(widths=(4, 4, 8), activation=activation))
        assert net(x).shape == (2, 10) and net.fc.in_features == 8 * 16
    assert Fig1Net(config=Fig1Config(activation="tanh")).act is torch.tanh


# -- learning ------------------------------------------------------------------------------------


def test_cifar_net_overfits_one_batch():
    torch.manual_seed(0)
    net = AlexNet(config=cifar_config(channels=(8, 8, 8, 8, 8), hidden=64, dropout=0.0))
    x, y = torch.randn(10, 3, 27, 27), torch.arange(10)
    opt = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9)
    for _ in range(60):
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (net(x).argmax(1) == y).all()


def test_dropout_only_while_training():
    net = AlexNet(config=TINY)
    x = torch.randn(4, 3, 27, 27)
    net.train()
    assert not torch.equal(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


# -- the claims at the quick preset --------------------------------------------------------------


def _quick(tmp_path, experiment: str) -> list[dict]:
    args = ["run", f"alexnet:{experiment}", "--preset", "quick", "--out", str(tmp_path)]
    assert main([*args, "-q", "--no-publish", "--jobs", "3"]) == 0
    (path,) = tmp_path.glob(f"alexnet/{experiment}/quick-*/results.json")
    return [c for c in json.loads(path.read_text())["claims"] if c["asserted"]]


@pytest.mark.slow
@pytest.mark.skipif(not has_dataset("cifar10"), reason="CIFAR-10 not found")
@pytest.mark.parametrize("experiment", ["dropout", "ablations", "imagenet"])
def test_quick_claims_hold(tmp_path, experiment):
    for claim in _quick(tmp_path, experiment):
        assert claim["holds"], claim


@pytest.mark.slow
@pytest.mark.skipif(not has_dataset("cifar10"), reason="CIFAR-10 not found")
@pytest.mark.xfail(
    strict=True,
    reason="at the quick scale (7,500 images, a cap of 700 iterations) neither activation "
    "reaches 25% training error, so ReLU is censored, and tanh's error is the lower one "
    "(as with the first design, 1,000 images); README: What the quick run shows",
)
def test_quick_relu_faster(tmp_path):
    (claim,) = _quick(tmp_path, "relu_vs_tanh")
    assert claim["holds"], claim
