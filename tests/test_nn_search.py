"""Greedy and beam search (``nn/search.py``): beam 1 is greedy; a wider beam finds the best
sequence of a hand-built model where greedy does not; the length penalty changes the
choice; a Transformer-style decoder gives the same search through its KV cache as when it
recomputes the whole prefix."""

import itertools
import math

import pytest
import torch
from torch import nn

from sutskever30.nn.attention import AttentionCache, MultiHeadAttention, PositionalEncoding
from sutskever30.nn.search import beam_search, greedy_search, length_penalty, search_sentences

EOS, BOS, A, B = 0, 1, 2, 3
ENDS = (0.97, 0.015, 0.015)  # weights of (EOS, A, B) after a prefix a table does not list


def table_step(tables):
    """A step function over the tokens EOS, BOS, A, B whose next-token weights
    (EOS, A, B) depend on the source (``tables[source]``) and the prefix so far."""

    def step(tokens, state):
        source, prefix = state
        prefix = torch.cat([prefix, tokens[:, None]], dim=1)  # (N, t), BOS first
        rows = zip(source.tolist(), prefix.tolist(), strict=True)
        weights = [tables[s].get(tuple(p[1:]), ENDS) for s, p in rows]  # (EOS, A, B) each
        weights = [(eos, 1e-9, a, b) for eos, a, b in weights]
        return torch.tensor(weights, dtype=torch.float64).log().log_softmax(-1), (source, prefix)

    return step


def start(n: int):
    return torch.arange(n), torch.zeros(n, 0, dtype=torch.long)


def enumerate_best(tables, source: int, *, alpha: float, max_len: int):
    """The sequence of the highest s(Y) = log P(Y) / lp(Y), by trying all of them."""
    step = table_step(tables)
    best = (float("-inf"), None)
    for n in range(max_len + 1):
        for body in itertools.product((A, B), repeat=n):
            seq = [*body, EOS] if n < max_len else list(body)
            logp, state = 0.0, (torch.tensor([source]), torch.zeros(1, 0, dtype=torch.long))
            for prev, tok in zip([BOS, *seq], seq, strict=False):
                out, state = step(torch.tensor([prev]), state)
                logp += out[0, tok].item()
            best = max(best, (logp / length_penalty(len(seq), alpha), list(body)))
    return best


# source 0: greedy takes A (0.6) then A then EOS, P = 0.135; B EOS has P = 0.359
# source 1: greedy is right (A A EOS)
# source 2: B A (0.38) overtakes every A prefix at step 2, so the beams trade places
# (beam 0 descends from beam 1) and the best, B A EOS, needs the state and prefixes reordered
TABLES = [
    {(): (0.001, 0.6, 0.399), (A,): (0.2, 0.45, 0.35), (A, A): (0.5, 0.25, 0.25),
     (A, B): (0.5, 0.25, 0.25), (B,): (0.9, 0.05, 0.05)},
    {(): (0.001, 0.7, 0.299), (A,): (0.1, 0.8, 0.1), (A, A): (0.9, 0.05, 0.05)},
    {(): (0.001, 0.6, 0.399), (A,): (0.3, 0.36, 0.34), (B,): (0.001, 0.95, 0.049),
     (B, A): (0.9, 0.05, 0.05)},
]  # fmt: skip


def test_beam_finds_the_best_sequence_where_greedy_does_not():
    kw = {"batch_size": 3, "bos": BOS, "eos": EOS, "max_len": 4}
    greedy = greedy_search(table_step(TABLES), start(3), **kw)
    beam = beam_search(table_step(TABLES), start(3), beam_size=2, alpha=0.0, **kw)
    assert greedy[0].tokens == [A, A] and beam[0].tokens == [B]
    assert greedy[0].log_prob == pytest.approx(math.log(0.6 * 0.45 * 0.5), abs=1e-6)
    assert beam[0].log_prob == pytest.approx(math.log(0.399 * 0.9), abs=1e-6)
    for source in (0, 1, 2):
        score, tokens = enumerate_best(TABLES, source, alpha=0.0, max_len=4)
        assert beam[source].tokens == tokens
        assert beam[source].score == pytest.approx(score, abs=1e-6)
    assert greedy[1].tokens == beam[1].tokens == [A, A]
    assert greedy[2].tokens == [A, A] and beam[2].tokens == [B, A]


def test_search_goes_on_while_a_longer_hypothesis_can_still_win():
    """[EOS] (P = 0.52) finishes at step 1 above every live prefix, but A A A A EOS
    (P ≈ 0.478) wins once divided by lp(5): the search may stop only when no live prefix
    can win even at length max_len."""
    go_on = (0.001, 0.998, 0.001)
    tables = [{(): (0.52, 0.48, 1e-6), (A,): go_on, (A, A): go_on, (A, A, A): go_on,
               (A, A, A, A): (0.998, 0.001, 0.001)}]  # fmt: skip
    kw = {"batch_size": 1, "bos": BOS, "eos": EOS, "max_len": 5, "beam_size": 2}
    for alpha, expected in ((0.0, []), (0.6, [A, A, A, A])):
        hyp = beam_search(table_step(tables), start(1), alpha=alpha, **kw)[0]
        assert hyp.tokens == expected == enumerate_best(tables, 0, alpha=alpha, max_len=5)[1]


def test_the_length_penalty_changes_the_choice():
    """[EOS] has P = 0.4 and [A, EOS] P = 0.6 · 0.62 = 0.372: the shorter wins on
    log-probability, the longer once divided by lp(Y) with α = 0.6."""
    tables = [{(): (0.4, 0.599999, 1e-6), (A,): (0.62, 0.379999, 1e-6)}]
    kw = {"batch_size": 1, "bos": BOS, "eos": EOS, "max_len": 4, "beam_size": 2}
    plain = beam_search(table_step(tables), start(1), alpha=0.0, **kw)[0]
    penalized = beam_search(table_step(tables), start(1), alpha=0.6, **kw)[0]
    assert plain.tokens == [] and penalized.tokens == [A]
    assert penalized.score == pytest.approx(math.log(0.372) / (7 / 6) ** 0.6, abs=1e-5)
    for alpha, hyp in ((0.0, plain), (0.6, penalized)):
        assert hyp.tokens == enumerate_best(tables, 0, alpha=alpha, max_len=4)[1]


class TinyDecoder(nn.Module):
    """Embedding + positions, causal self-attention, attention over a source memory, a
    linear head: enough to drive a search through KV caches."""

    def __init__(self, vocab: int = 7, d: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = PositionalEncoding(d_model=d, max_len=32)
        self.self_attn = MultiHeadAttention(d_model=d, n_heads=2)
        self.cross = MultiHeadAttention(d_model=d, n_heads=2)
        self.head = nn.Linear(d, vocab)

    def forward(self, tokens, memory, caches=None):
        offset = 0 if caches is None else caches[0].length
        x = self.pos(self.embed(tokens), offset=offset)  # (N, t, d)
        self_cache, cross_cache = (None, None) if caches is None else caches
        x = x + self.self_attn(x, x, x, causal=True, cache=self_cache)[0]
        x = x + self.cross(x, memory, memory, cache=cross_cache)[0]
        return self.head(x).log_softmax(-1)  # (N, t, V)

    def cached_step(self, tokens, state):
        memory, caches = state
        return self(tokens[:, None], memory, caches)[:, -1], state

    def full_step(self, tokens, state):
        memory, prefix = state
        prefix = torch.cat([prefix, tokens[:, None]], dim=1)
        return self(prefix, memory)[:, -1], (memory, prefix)


@torch.no_grad()
def test_search_through_the_kv_cache_equals_recomputing_the_prefix():
    model = TinyDecoder().eval()
    memory = torch.randn(3, 5, 16)
    kw = {"batch_size": 3, "bos": BOS, "eos": EOS, "max_len": 12}
    for search, extra in ((greedy_search, {}), (beam_search, {"beam_size": 3, "alpha": 0.6})):
        caches = [AttentionCache(), AttentionCache(static=True)]
        cached = search(model.cached_step, (memory, caches), **kw, **extra)
        full = search(model.full_step, (memory, torch.zeros(3, 0, dtype=torch.long)), **kw, **extra)
        assert [h.tokens for h in cached] == [h.tokens for h in full]
        for c, f in zip(cached, full, strict=True):
            assert c.score == pytest.approx(f.score, abs=1e-4)
            assert len(c.tokens) <= 12 and EOS not in c.tokens


@torch.no_grad()
def test_beam_of_one_is_greedy():
    """A random recurrent decoder, three sources of different starting states: beam 1
    (α = 0) returns greedy's tokens and log-probabilities."""
    cell, head = nn.GRUCell(8, 16), nn.Linear(16, 9)
    embed = nn.Embedding(9, 8)

    def step(tokens, h):
        h = cell(embed(tokens), h)
        return head(h).log_softmax(-1), h

    h0 = 3 * torch.randn(5, 16)
    kw = {"batch_size": 5, "bos": BOS, "eos": EOS, "max_len": 15}
    greedy = greedy_search(step, h0, **kw)
    beam1 = beam_search(step, h0, beam_size=1, alpha=0.0, **kw)
    assert [h.tokens for h in beam1] == [h.tokens for h in greedy]
    for g, b in zip(greedy, beam1, strict=True):
        assert b.log_prob == pytest.approx(g.log_prob, abs=1e-5)
    assert any(len(h.tokens) < 15 for h in greedy)  # some stop at EOS: the EOS path is tested


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(
            table_step(TABLES), start(1), batch_size=1, bos=BOS, eos=EOS, max_len=3, beam_size=0
        )
    with pytest.raises(ValueError, match="max_len"):
        greedy_search(table_step(TABLES), start(1), batch_size=1, bos=BOS, eos=EOS, max_len=0)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_search_sentences_returns_each_sources_output_in_the_given_order(beam_size):
    """A model that copies its source then ends: every output is its own source, whatever
    the batching by length (sources longer and shorter interleaved)."""
    pad, bos, eos, vocab = 0, 1, 2, 9
    sources = [[3, 4, 5, 6], [7], [8, 3, 4], [5, 5], [6, 7, 8, 3, 4, 5]]

    def start(src, lengths):
        return {"src": src, "len": lengths, "t": torch.zeros(len(src), dtype=torch.long)}

    def step(tokens, state):
        t, rows = state["t"], torch.arange(len(tokens))
        want = torch.where(
            t < state["len"], state["src"][rows, t.clamp(max=state["src"].shape[1] - 1)], eos
        )
        log_probs = torch.full((len(tokens), vocab), -9.0)
        log_probs[rows, want] = 0.0
        return log_probs.log_softmax(-1), {**state, "t": t + 1}

    out = search_sentences(start, step, sources, pad=pad, bos=bos, eos=eos, beam_size=beam_size)
    assert out == sources
