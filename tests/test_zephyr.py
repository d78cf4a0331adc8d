"""Zephyr: the DPO loss, summed response log-probabilities, the frozen reference, the
binarization of judged completions, the DistilBERT-style student, and the claims."""

import dataclasses
import json
import math
import random

import pytest
import torch

from sutskever30.cli import main
from sutskever30.nn.llama import Llama, LlamaConfig
from sutskever30.papers.zephyr.data import TeacherData
from sutskever30.papers.zephyr.experiment import (
    HAND_LOSS,
    SMOKE,
    preference_pairs,
    train_dpo,
)
from sutskever30.papers.zephyr.model import (
    SentimentJudge,
    binarize,
    dpo_loss,
    pack,
    response_log_prob,
    sft_loss,
    student_from_teacher,
    win_rate,
)
from tests.conftest import has_dataset
from tests.scratch import scratch_run

TINY = LlamaConfig(vocab_size=40, n_layer=4, d_model=16, n_head=4, n_kv_head=2, d_ff=24)


def _tiny(seed: int = 0) -> Llama:
    torch.manual_seed(seed)
    model = Llama(TINY)
    for p in model.parameters():  # random norms too, so that a wrong layer copy shows
        torch.nn.init.normal_(p, 0.0, 0.5)
    return model.eval()


def test_dpo_loss_equals_hand_computed_values():
    # one pair: z = β((−10 + 11) − (−12 + 11)) = 0.1 · 2 = 0.2; −log σ(0.2) = log(1 + e^−0.2)
    loss, r_w, r_l = dpo_loss(
        torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([-11.0]), torch.tensor([-11.0])
    )
    assert loss.item() == pytest.approx(0.598138869, abs=1e-7)
    assert math.log1p(math.exp(-0.2)) == pytest.approx(HAND_LOSS, abs=1e-9)
    assert r_w.item() == pytest.approx(0.1) and r_l.item() == pytest.approx(-0.1)
    # two pairs, β = 0.5: z = 0.5(3 − 1) = 1 and 0.5(−2 − 0) = −1: the mean of
    # log(1 + e^−1) = 0.313261687 and log(1 + e) = 1.313261687 is 0.813261687
    loss, _, _ = dpo_loss(
        torch.tensor([-5.0, -9.0]),
        torch.tensor([-7.0, -8.0]),
        torch.tensor([-8.0, -7.0]),
        torch.tensor([-8.0, -8.0]),
        beta=0.5,
    )
    assert loss.item() == pytest.approx(0.813261687, abs=1e-7)


def test_dpo_gradient_raises_the_chosen_and_lowers_the_rejected():
    pc, pr = torch.tensor([-10.0], requires_grad=True), torch.tensor([-12.0], requires_grad=True)
    loss, _, _ = dpo_loss(pc, pr, torch.tensor([-11.0]), torch.tensor([-11.0]))
    loss.backward()
    # ∂L/∂log π(y_w) = −β σ(−z), ∂L/∂log π(y_l) = +β σ(−z), z = 0.2
    assert pc.grad.item() == pytest.approx(-0.1 * torch.sigmoid(torch.tensor(-0.2)).item())
    assert pr.grad.item() == pytest.approx(-pc.grad.item())


def _manual_response_log_prob(model, prompt, response):
    """Σ_t log π(y_t | x, y_<t), one forward of the unpadded sequence per response token."""
    total = 0.0
    seq = list(prompt)
    for y in response:
        logits = model(torch.tensor([seq]))[0, -1]
        total += logits.log_softmax(-1)[y].item()
        seq.append(y)
    return total


def test_response_log_prob_is_the_sum_over_response_tokens_only():
    """Against a token-by-token reference: averaging, scoring prompt tokens or shifting the
    positions by one would each give other numbers. Left padding (a longer row beside)
    changes nothing."""
    model = _tiny()
    prompts = [[3, 7, 1, 9, 4], [5, 2]]
    responses = [[8, 8, 2], [6, 1, 3, 3, 7]]
    with torch.no_grad():
        got = response_log_prob(model, pack(prompts, responses, pad_id=0))
        for i in range(2):
            want = _manual_response_log_prob(model, prompts[i], responses[i])
            assert got[i].item() == pytest.approx(want, abs=1e-4)
            alone = response_log_prob(model, pack([prompts[i]], [responses[i]], pad_id=0))
            assert alone.item() == pytest.approx(got[i].item(), abs=1e-4)
        # the prompt is context: another prompt changes the response's log-probability, but
        # the prompt's own tokens are not counted (a longer prompt does not lower it by its
        # own log-probability)
        longer = response_log_prob(model, pack([[5, 2] * 6], [responses[1]], pad_id=0))
        assert longer.item() == pytest.approx(
            _manual_response_log_prob(model, [5, 2] * 6, responses[1]), abs=1e-4
        )


def test_sft_loss_is_the_mean_cross_entropy_of_response_tokens():
    model = _tiny()
    prompts, responses = [[3, 7, 1], [5, 2, 2, 9]], [[8, 2], [6, 1, 3]]
    with torch.no_grad():
        loss = sft_loss(model, pack(prompts, responses, pad_id=0)).item()
    total = sum(
        _manual_response_log_prob(model, p, r) for p, r in zip(prompts, responses, strict=True)
    )
    assert loss == pytest.approx(-total / 5, abs=1e-4)


def _teacher_data(prompts, completions) -> TeacherData:
    return TeacherData([], [], prompts, completions, [], [], [], pad_id=0)


def test_the_reference_stays_frozen_while_the_policy_learns(tmp_path):
    reference = _tiny(1)
    policy = _tiny(1)
    pairs = preference_pairs(
        _teacher_data([[1, 2, 3], [4, 5], [6, 7, 8, 9]], [[[10, 11], [12]]] * 3),
        [[0.9, 0.1]] * 3,
        seed=0,
    )
    before_ref = {k: v.clone() for k, v in reference.state_dict().items()}
    before_pol = {k: v.clone() for k, v in policy.state_dict().items()}
    cfg = dataclasses.replace(SMOKE, bf16=False, dpo_steps=3)
    run = scratch_run(tmp_path, "zephyr", "distill", cfg)
    history = train_dpo(run, "ddpo", policy, reference, pairs, 1e-2, cfg)
    assert all(not p.requires_grad and p.grad is None for p in reference.parameters())
    for k, v in reference.state_dict().items():
        assert torch.equal(v, before_ref[k]), k
    assert any(not torch.equal(v, before_pol[k]) for k, v in policy.state_dict().items())
    assert history[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)  # π_θ = π_ref at start
    assert history[-1]["margin"] > 0  # the policy learned to prefer y_w


def test_binarization_picks_the_judges_best_and_a_random_other():
    scores = [0.1, 0.9, -0.3, 0.5]
    rejected = set()
    for seed in range(50):
        best, other = binarize(scores, random.Random(seed))
        assert best == 1
        rejected.add(other)
    assert rejected == {0, 2, 3}
    assert binarize([0.0, 0.0], random.Random(0)) is None  # a tie: no preference
    data = _teacher_data([[1], [2]], [[[5], [6], [7]], [[8], [9], [10]]])
    pairs = preference_pairs(data, [[0.2, -0.5, 0.7], [0.0, 0.0, 0.0]], seed=0)
    assert pairs.prompts == [[1]] and pairs.chosen == [[7]] and pairs.rejected[0] in ([5], [6])


def test_judge_and_win_rate():
    judge = SentimentJudge()
    assert judge("What a wonderful, happy day!") > 0.5 > judge("A man stands.") > -0.5
    assert judge("This is a terrible, sad disaster.") < -0.5
    assert win_rate([0.5, 0.0, -1.0, 0.2], [0.1, 0.0, 0.0, 0.2]) == pytest.approx(0.5)


def test_student_keeps_the_teachers_chosen_layers():
    teacher = _tiny()
    layers = (0, 3)
    student = student_from_teacher(teacher, layers)
    assert student.cfg.n_layer == 2
    torch.testing.assert_close(student.embed.weight, teacher.embed.weight)
    torch.testing.assert_close(
        student.blocks[1].mlp.up_proj.weight, teacher.blocks[3].mlp.up_proj.weight
    )
    assert student.embed.weight.data_ptr() != teacher.embed.weight.data_ptr()  # a copy
    # the student equals the teacher with layers 1 and 2 skipped, also through the cache
    x = torch.randint(0, 40, (2, 6))
    with torch.no_grad():
        h = teacher.embed(x)
        pos = torch.arange(6).expand(2, 6)
        mask = torch.ones(2, 1, 6, 6, dtype=torch.bool).tril()
        for j in layers:
            h = teacher.blocks[j](h, pos, mask, None)
        want = teacher.norm(h) @ teacher.embed.weight.T
        torch.testing.assert_close(student(x), want, atol=1e-5, rtol=1e-5)
        cache = student.new_cache()
        stepped = torch.cat([student(x[:, :4], cache=cache), student(x[:, 4:], cache=cache)], 1)
        torch.testing.assert_close(stepped, want, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="increasing"):
        student_from_teacher(teacher, (2, 1))


def test_sample_rejects_bad_arguments(capsys):
    assert main(["sample", "zephyr", "--model", "gpt4", "--prompt", "hi"]) == 2
    assert "--model must be one of" in capsys.readouterr().err
    assert main(["sample", "zephyr", "--prompt", "  "]) == 2
    assert "--prompt" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_claims_hold(tmp_path):
    if not has_dataset("multi30k"):
        pytest.skip("Multi30k not present")
    assert main(["run", "zephyr", "--out", str(tmp_path), "-q", "--no-publish"]) == 0
    (run_dir,) = (tmp_path / "zephyr" / "distill").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["seeds"] == [0, 1, 2]
    for claim in results["claims"]:
        assert claim["holds"] or not claim["asserted"], claim
