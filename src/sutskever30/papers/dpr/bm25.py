"""BM25 (Robertson et al. 1994; Robertson & Zaragoza 2009), the sparse baseline of DPR.

Karpukhin et al. 2020 run BM25 through Lucene (Pyserini/Anserini, k1 = 0.9, b = 0.4), and
that variant is the one here (Kamphuis et al. 2020, "Which BM25 Do You Mean?"):

    score(q, d) = Σ_{t ∈ q} idf(t) · tf(t, d) / (tf(t, d) + k1 · (1 − b + b · |d| / avgdl))
    idf(t) = log(1 + (N − df(t) + 0.5) / (df(t) + 0.5))

summed over the query's tokens with repeats (a token twice in the query counts twice, as two
Lucene clauses). Every (document, term) score is computed once when the index is built
(eager scoring, as bm25s does), a vocabulary × documents matrix Sᵀ; a batch of queries is then
one product, ``scores = Q · Sᵀ`` with Q the queries' term counts, and ``torch.topk``.

Why the product is split in two: the few terms in more than ``DENSE_DF`` of the documents
(the, of, and, ...) hold most of Sᵀ's entries and make a sparse × sparse product with an
almost dense result; their rows are kept as a dense matrix and multiplied by BLAS, the rest
sparse. On the 4,338-passage shard this is ~3× faster than one sparse product (measured).

Tokens: lowercased words of two or more letters or digits (the regular expression
``\\b\\w\\w+\\b``, scikit-learn's and bm25s's default), no stemming, no stopword list
(Lucene's English analyzer stems and drops stopwords: a deviation, stated in the README).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
DENSE_DF = 0.05  # terms in more than this fraction of the documents: the dense part of Sᵀ


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class BM25:
    """An eager BM25 index over ``docs`` (texts, or lists of tokens)."""

    def __init__(self, docs: Sequence[str | list[str]], *, k1: float = 0.9, b: float = 0.4):
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1, self.b = k1, b
        tokens = [d if isinstance(d, list) else tokenize(d) for d in docs]
        self.vocab: dict[str, int] = {}
        rows, cols = [], []
        for i, doc in enumerate(tokens):
            ids = [self.vocab.setdefault(t, len(self.vocab)) for t in doc]
            rows.append(np.full(len(ids), i, dtype=np.int64))
            cols.append(np.asarray(ids, dtype=np.int64))
        n, v = len(tokens), len(self.vocab)
        r, c = np.concatenate(rows or [[]]), np.concatenate(cols or [[]])
        tf = sp.csr_matrix((np.ones(len(r), dtype=np.float32), (r, c)), shape=(n, v))
        tf.sum_duplicates()  # (N, V) term counts
        length = np.asarray(tf.sum(1)).ravel()  # |d|
        df = np.diff(tf.tocsc().indptr)  # documents holding each term
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = self.k1 * (1 - self.b + self.b * length / max(length.mean(), 1e-9))  # (N,)
        doc_of = np.repeat(np.arange(n), np.diff(tf.indptr))
        tf.data = self.idf[tf.indices] * tf.data / (tf.data + norm[doc_of])
        scores_t = tf.T.tocsr()  # Sᵀ (V, N)
        frequent = df > DENSE_DF * n
        self._dense_terms = np.flatnonzero(frequent)
        self._sparse_terms = np.flatnonzero(~frequent)
        self._dense = scores_t[self._dense_terms].toarray()  # (V_dense, N)
        self._sparse = scores_t[self._sparse_terms]  # (V_sparse, N) CSR
        self.n_docs = n

    def query_matrix(self, queries: Sequence[str | list[str]]) -> sp.csr_matrix:
        """(Q, V) counts of each query's known tokens."""
        rows, cols = [], []
        for i, q in enumerate(queries):
            words = q if isinstance(q, list) else tokenize(q)
            ids = [self.vocab[t] for t in words if t in self.vocab]
            rows += [i] * len(ids)
            cols += ids
        data = np.ones(len(rows), dtype=np.float32)
        return sp.csr_matrix((data, (rows, cols)), shape=(len(queries), len(self.vocab)))

    def scores(self, queries: Sequence[str | list[str]]) -> np.ndarray:
        """(Q, N) BM25 score of every document for every query."""
        q = self.query_matrix(queries)
        out = (q[:, self._sparse_terms] @ self._sparse).toarray()
        out += q[:, self._dense_terms].toarray() @ self._dense
        return out

    def search(
        self, queries: Sequence[str | list[str]], k: int, *, chunk: int = 512
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best documents of each query, best first: scores and indices (Q, k)."""
        k = min(k, self.n_docs)
        out_s = np.empty((len(queries), k), dtype=np.float32)
        out_i = np.empty((len(queries), k), dtype=np.int64)
        for start in range(0, len(queries), chunk):
            top = torch.from_numpy(self.scores(queries[start : start + chunk])).topk(k)
            out_s[start : start + len(top.values)] = top.values.numpy()
            out_i[start : start + len(top.values)] = top.indices.numpy()
        return out_s, out_i
