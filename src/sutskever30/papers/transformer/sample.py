"""``s30 sample transformer --text "..."``: translate a German sentence into English with the
Transformer of the newest finished ``translate`` run (or ``--run <folder>``), by beam search
(beam 4, α = 0.6, as the paper). Words outside the training vocabulary read as ``<unk>``."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from sutskever30.core.checkpoint import finished_run_checkpoint, load_checkpoint
from sutskever30.core.errors import CheckpointError, UsageError
from sutskever30.data.translation import Vocab, tokenize
from sutskever30.nn.search import beam_search
from sutskever30.papers.transformer.experiments.translate import CHECKPOINT, SRC, TGT
from sutskever30.papers.transformer.model import Transformer, TransformerConfig

BEAM, ALPHA = 4, 0.6  # §6.1
MAX_WORDS = 200  # a longer --text is refused: the model was trained on captions


def load_translator(path: Path) -> tuple[Transformer, Vocab, Vocab]:
    state = load_checkpoint(path)
    try:
        model = Transformer(TransformerConfig(**state["model_config"]))
        model.load_state_dict(state["transformer"])
        src_vocab = Vocab.from_dict(state["vocab"][SRC])
        tgt_vocab = Vocab.from_dict(state["vocab"][TGT])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(
            f"{path} is not a transformer translate checkpoint ({err!r})"
        ) from None
    return model.eval(), src_vocab, tgt_vocab


@torch.no_grad()
def translate_text(model: Transformer, src_vocab: Vocab, tgt_vocab: Vocab, text: str) -> str:
    src = torch.tensor([src_vocab.encode(text)])  # (1, T_x), ending in <eos>
    (best,) = beam_search(
        model.step,
        model.start(src),
        batch_size=1,
        beam_size=BEAM,
        alpha=ALPHA,
        bos=tgt_vocab.bos_id,
        eos=tgt_vocab.eos_id,
        max_len=2 * src.shape[1] + 10,
    )
    return tgt_vocab.decode(best.tokens)


def sample_command(args: argparse.Namespace) -> str:
    """The English translation of ``--text`` (the sampling options do not apply)."""
    text = args.prompt.strip()
    if not text:
        raise UsageError('--text must hold a German sentence, e.g. --text "Ein Hund läuft."')
    if len(tokenize(text)) > MAX_WORDS:
        raise UsageError(f"--text is longer than {MAX_WORDS} words")
    model, src_vocab, tgt_vocab = load_translator(
        finished_run_checkpoint("transformer", CHECKPOINT, args.run, args.out)
    )
    return translate_text(model, src_vocab, tgt_vocab, text)
