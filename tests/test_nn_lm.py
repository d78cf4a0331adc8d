"""nn/lm.py: the window gather, the warmup + cosine schedule (GPT-2's floor and Kaplan's
decay to zero), AdamW's decay groups."""

import itertools

import pytest
import torch

from sutskever30.nn.gpt import GPT, GPTConfig
from sutskever30.nn.lm import adamw, warmup_cosine, windows


def test_windows_are_consecutive_slices_of_the_stream():
    data = torch.arange(100) * 3
    starts = torch.tensor([0, 7, 90])
    got = windows(data, starts, 10)
    assert got.shape == (3, 10)
    for row, s in enumerate(starts.tolist()):
        assert torch.equal(got[row], data[s : s + 10])


def test_warmup_then_cosine_to_the_floor():
    f = [warmup_cosine(s, steps=110, warmup=10, min_frac=0.1) for s in range(110)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0) and f[10] == 1.0
    assert all(a >= b for a, b in itertools.pairwise(f[10:]))  # the cosine never rises
    assert f[60] == pytest.approx(0.55)  # halfway: (1 + floor) / 2
    assert warmup_cosine(110, steps=110, warmup=10, min_frac=0.1) == pytest.approx(0.1)
    assert warmup_cosine(500, steps=110, warmup=10, min_frac=0.1) == pytest.approx(0.1)


def test_kaplans_schedule_decays_to_zero():
    m = [warmup_cosine(s, steps=100, warmup=10) for s in range(101)]
    assert m[0] == pytest.approx(0.1) and m[9] == pytest.approx(1.0)
    assert m[55] == pytest.approx(0.5) and m[100] == 0


def test_adamw_decays_matrices_only_and_holds_the_tied_head_once():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=12, context=8, n_layer=2, n_head=2, d_model=16))
    opt = adamw(model, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.99))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert decay["betas"] == (0.9, 0.99)
    assert all(p.dim() == 2 for p in decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"])
    held = [id(p) for g in opt.param_groups for p in g["params"]]
    assert len(held) == len(set(held)) == len(list(model.parameters()))
    assert any(p is model.embed.wte.weight for p in decay["params"])
