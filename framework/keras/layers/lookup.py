"""Categorical preprocessing layers, as ``tf.keras.layers`` (Keras 3's formulas):
CategoryEncoding, Discretization, IntegerLookup, StringLookup and TextVectorization.

Kiln has no string tensors: strings (Python or numpy) are looked up eagerly, in numpy,
where a ``tf.data`` pipeline or the caller holds them, and the integer ids they become
enter compiled code. Integer inputs (IntegerLookup, Discretization, CategoryEncoding) work
eagerly and inside ``@function`` alike: a lookup compares each id with the vocabulary (a
vocabulary of V tokens costs V comparisons an element)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from ... import array_ops as A
from ... import math_ops as M
from ...tensor import Tensor
from .base import Layer

MODES = ("int", "one_hot", "multi_hot", "count")


def _mode(layer, output_mode, allowed=MODES):
    if output_mode not in allowed:
        raise ValueError(f"{type(layer).__name__}: output_mode must be one of {allowed}; "
                         f"received {output_mode!r}")
    return output_mode


def encode(ids, mode, depth, dtype="float32", count_weights=None):
    """Integer ids as Keras encodes categories: themselves ("int"), a one-hot row per id
    ("one_hot": a last dim of 1 is replaced), or per example (rank 2; rank 1 is one
    example) the ids present ("multi_hot") or counted ("count", weighted)."""
    if mode == "int":
        return ids
    if ids.shape.rank == 0:
        ids = A.reshape(ids, [1])
    if ids.shape.rank > 2:
        raise ValueError(f"{mode} encoding takes inputs of rank 1 or 2; received shape "
                         f"{tuple(ids.shape)}")
    if mode == "one_hot":
        if ids.shape.rank > 0 and ids.shape[-1] == 1:
            ids = A.squeeze(ids, [-1])
        return A.one_hot(M.cast(ids, "int32"), depth, dtype=dtype)
    hot = A.one_hot(M.cast(ids, "int32"), depth, dtype=dtype)
    axis = 1 if ids.shape.rank > 1 else 0
    if mode == "multi_hot":
        return M.reduce_max(hot, axis)
    if count_weights is not None:
        hot = hot * A.expand_dims(M.cast(count_weights, dtype), -1)
    return M.reduce_sum(hot, axis)


class CategoryEncoding(Layer):
    """Integer ids in ``[0, num_tokens)`` encoded as ``output_mode`` ("multi_hot",
    "one_hot" or "count"; ``count_weights`` weight the counts)."""

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if num_tokens is None or int(num_tokens) < 1:
            raise ValueError(f"CategoryEncoding: num_tokens must be a positive int; "
                             f"received {num_tokens!r}")
        if sparse:
            raise ValueError("CategoryEncoding: sparse outputs are not supported")
        self.num_tokens = int(num_tokens)
        self.output_mode = _mode(self, output_mode, MODES[1:])

    def call(self, inputs, count_weights=None):
        return encode(inputs, self.output_mode, self.num_tokens, self.compute_dtype,
                      count_weights)

    def get_config(self):
        return super().get_config() | {"num_tokens": self.num_tokens,
                                       "output_mode": self.output_mode, "sparse": False}


def _summary(values, epsilon):
    """Keras's quantile summary of sorted values: every ``n * epsilon``-th value with
    that many values' weight (all of them, weight 1, when fewer than 1 / epsilon)."""
    values = np.sort(np.ravel(values).astype(np.float32))
    step = max(values.size * epsilon, 1)
    picked = values[int(step - 1)::int(step)]
    return np.stack([picked, np.full(picked.shape, step, np.float32)])


def _compress(summary, epsilon):
    """The summary at quantiles ``epsilon, 2 epsilon, ..., 1`` (interpolated), when it
    holds more points than that."""
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cum = summary[1].cumsum()
    where = cum / cum[-1]
    bins = np.interp(percents, where, summary[0])
    cum = np.interp(percents, where, cum)
    return np.stack([bins, cum - np.concatenate([[0.0], cum[:-1]])]).astype(np.float32)


class Discretization(Layer):
    """Values bucketed by ``bin_boundaries`` (bucket i holds boundaries[i-1] <= x <
    boundaries[i]), or by ``num_bins`` boundaries that ``adapt`` estimates as Keras does
    (a quantile summary within ``epsilon``); ids encoded by ``output_mode``."""

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int",
                 sparse=False, **kwargs):
        super().__init__(**kwargs)
        if (bin_boundaries is None) == (num_bins is None):
            raise ValueError("Discretization: set either num_bins or bin_boundaries (not "
                             f"both); received num_bins={num_bins!r}, "
                             f"bin_boundaries={bin_boundaries!r}")
        if sparse:
            raise ValueError("Discretization: sparse outputs are not supported")
        self.bin_boundaries = None if bin_boundaries is None else \
            [float(b) for b in bin_boundaries]
        self.num_bins, self.epsilon = num_bins, float(epsilon)
        self.output_mode = _mode(self, output_mode)

    def adapt(self, data, steps=None):
        from .preprocessing import _data_batches
        if self.num_bins is None:
            raise ValueError("Discretization: a layer given bin_boundaries cannot adapt; "
                             "pass num_bins instead")
        summary = np.zeros((2, 0), np.float32)
        for i, batch in enumerate(_data_batches(data)):
            if steps is not None and i >= steps:
                break
            merged = np.concatenate([_summary(batch, self.epsilon), summary], axis=1)
            summary = _compress(merged[:, np.argsort(merged[0], kind="stable")],
                                self.epsilon)
        self.bin_boundaries = _compress(summary, 1.0 / self.num_bins)[0, :-1].tolist()

    def call(self, inputs):
        if self.bin_boundaries is None:
            raise ValueError(f"{self.name}: call adapt() first (or pass bin_boundaries)")
        x = M.cast(inputs, "float32")
        bounds = A.constant(np.asarray(self.bin_boundaries, np.float32))
        ids = M.reduce_sum(M.cast(A.expand_dims(x, -1) >= bounds, "int64"), -1)
        return encode(ids, self.output_mode, len(self.bin_boundaries) + 1)

    def get_config(self):
        return super().get_config() | {"bin_boundaries": self.bin_boundaries,
                                       "num_bins": self.num_bins, "epsilon": self.epsilon,
                                       "output_mode": self.output_mode, "sparse": False}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        bounds = config.pop("bin_boundaries")
        if config.get("num_bins") is None:
            config["bin_boundaries"] = bounds
        layer = cls(**config)
        layer.bin_boundaries = bounds
        return layer


def _strings(inputs) -> bool:
    """Whether ``inputs`` are text (str or bytes: a Python value, list or numpy array)."""
    if isinstance(inputs, (str, bytes)):
        return True
    if isinstance(inputs, (list, tuple, np.ndarray)):
        a = np.asarray(inputs, dtype=object).ravel()
        return a.size > 0 and isinstance(a[0], (str, bytes))
    return False


class _Text(Layer):
    """A layer that takes text: strings skip the conversion to tensors (there are no
    string tensors) and go to ``call`` as they are."""

    def __call__(self, inputs, *args, **kwargs):
        if _strings(inputs):
            self.built = True
            return self.call(inputs)
        return super().__call__(inputs, *args, **kwargs)


class _Lookup(_Text):
    """Tokens -> ids over a vocabulary, as Keras's IndexLookup: the mask token (if any) is
    id 0, then ``num_oov_indices`` ids for tokens not in the vocabulary, then the
    vocabulary in order; ``adapt`` builds the vocabulary from data, most frequent first
    (ties: the greater token first), ``max_tokens`` ids in all. ``invert`` maps ids back
    to tokens."""

    kind = "token"

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=None,
                 vocabulary=None, invert=False, output_mode="int", sparse=False,
                 pad_to_max_tokens=False, **kwargs):
        kwargs.pop("vocabulary_dtype", None)
        super().__init__(**kwargs)
        if sparse or pad_to_max_tokens:
            raise ValueError(f"{type(self).__name__}: sparse and pad_to_max_tokens are not "
                             f"supported")
        if int(num_oov_indices) < 0:
            raise ValueError(f"{type(self).__name__}: num_oov_indices must be >= 0; "
                             f"received {num_oov_indices!r}")
        self.max_tokens, self.num_oov_indices = max_tokens, int(num_oov_indices)
        self.mask_token, self.oov_token, self.invert = mask_token, oov_token, invert
        self.output_mode = _mode(self, output_mode)
        if invert and output_mode != "int":
            raise ValueError(f"{type(self).__name__}: invert needs output_mode='int'")
        self._vocab: list = []
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    def _start(self) -> int:
        return (self.mask_token is not None) + self.num_oov_indices

    def set_vocabulary(self, vocabulary) -> None:
        vocab = [self._token(v) for v in np.ravel(np.asarray(vocabulary, dtype=object))]
        special = {self.mask_token, self.oov_token} - {None}
        if len(set(vocab)) != len(vocab) or special & set(vocab):
            raise ValueError(f"{type(self).__name__}: the vocabulary must hold distinct "
                             f"tokens and neither the mask nor the OOV token; received "
                             f"{vocab[:20]!r}")
        self._vocab = vocab

    def get_vocabulary(self, include_special_tokens=True) -> list:
        if not include_special_tokens:
            return list(self._vocab)
        head = [] if self.mask_token is None else [self.mask_token]
        return head + [self.oov_token] * self.num_oov_indices + list(self._vocab)

    def vocabulary_size(self) -> int:
        return self._start() + len(self._vocab)

    def adapt(self, data, steps=None):
        from .preprocessing import _data_batches
        counts: Counter = Counter()
        for i, batch in enumerate(_data_batches(data)):
            if steps is not None and i >= steps:
                break
            counts.update(self._token(t) for t in np.ravel(batch))
        for t in (self.mask_token, self.oov_token):
            counts.pop(t, None)
        order = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        keep = None if self.max_tokens is None else max(self.max_tokens - self._start(), 0)
        self._vocab = [t for t, _ in order[:keep]]

    def _table(self) -> dict:
        start = self._start()
        table = {t: start + i for i, t in enumerate(self._vocab)}
        if self.mask_token is not None:
            table[self.mask_token] = 0
        return table

    def _oov(self, tokens: np.ndarray) -> np.ndarray:
        base = self.mask_token is not None
        if self.num_oov_indices == 0:
            raise ValueError(f"{self.name}: tokens outside the vocabulary with "
                             f"num_oov_indices=0: {list(np.unique(tokens))[:10]!r}")
        if self.num_oov_indices == 1:
            return np.full(tokens.shape, base, np.int64)
        return base + self._oov_buckets(tokens)

    def call(self, inputs):
        if self.invert:
            return self._inverse(inputs)
        if isinstance(inputs, Tensor) and inputs.is_symbolic:
            ids = self._lookup_traced(inputs)
        else:
            tokens = np.asarray(inputs, dtype=object)
            table = self._table()
            flat = [table.get(self._token(t), -1) for t in tokens.ravel()]
            ids = np.asarray(flat, np.int64).reshape(tokens.shape)
            missing = ids < 0
            if missing.any():
                ids[missing] = self._oov(tokens[missing])
            ids = A.constant(ids)
        return encode(ids, self.output_mode, self.vocabulary_size())

    def _lookup_traced(self, x):
        raise TypeError(f"{self.name}: string tensors do not exist in Kiln; look strings up "
                        f"eagerly (numpy arrays or Python lists), then pass the ids on")

    def _inverse(self, ids):
        vocab = np.asarray(self.get_vocabulary(), dtype=object)
        ids = np.asarray(ids).astype(np.int64)
        bad = (ids < 0) | (ids >= len(vocab))
        out = vocab[np.where(bad, 0, ids)]
        out[bad] = self.oov_token
        return out

    def get_config(self):
        return super().get_config() | {
            "max_tokens": self.max_tokens, "num_oov_indices": self.num_oov_indices,
            "mask_token": self.mask_token, "oov_token": self.oov_token,
            "vocabulary": list(self._vocab), "invert": self.invert,
            "output_mode": self.output_mode}


class StringLookup(_Lookup):
    """Strings -> int64 ids (eagerly: Kiln has no string tensors). OOV strings share
    one id; several OOV ids (which Keras fills by FarmHash) are not supported."""

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]",
                 vocabulary=None, encoding="utf-8", **kwargs):
        if int(num_oov_indices) > 1:
            raise ValueError("StringLookup: num_oov_indices > 1 (FarmHash buckets) is not "
                             "supported")
        self.encoding = encoding
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary,
                         **kwargs)

    def _token(self, t):
        return t.decode(self.encoding) if isinstance(t, bytes) else str(t)

    def get_config(self):
        return super().get_config() | {"encoding": self.encoding}


class IntegerLookup(_Lookup):
    """Integers -> int64 ids, eagerly or inside ``@function``; with several OOV ids, an
    unknown integer x gets bucket ``x mod num_oov_indices`` (as Keras)."""

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1,
                 vocabulary=None, **kwargs):
        super().__init__(max_tokens, num_oov_indices, mask_token, oov_token, vocabulary,
                         **kwargs)

    def _token(self, t):
        return int(t)

    def _oov_buckets(self, tokens):
        return np.mod(tokens.astype(np.int64), self.num_oov_indices)

    def _lookup_traced(self, x):
        if self.num_oov_indices == 0:
            raise ValueError(f"{self.name}: inside @function every integer needs an id; set "
                             f"num_oov_indices >= 1")
        x, start = M.cast(x, "int64"), self._start()
        ids = A.zeros_like(x) - 1
        for i, t in enumerate(self._vocab):  # one compare a token of the vocabulary
            ids = M.where(M.equal(x, t), A.constant(np.int64(start + i)), ids)
        if self.mask_token is not None:
            ids = M.where(M.equal(x, int(self.mask_token)), A.constant(np.int64(0)), ids)
        oov = A.zeros_like(x) + int(self.mask_token is not None)
        if self.num_oov_indices > 1:
            oov = oov + M.floormod(x, np.int64(self.num_oov_indices))
        return M.where(ids < 0, oov, ids)


DEFAULT_STRIP = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'


class TextVectorization(_Text):
    """Strings -> int64 token ids (eagerly): lower-cased and stripped of punctuation
    (``standardize="lower_and_strip_punctuation"``, or "lower", "strip_punctuation",
    None or a function), split on whitespace (or a function, or None), looked up in a
    vocabulary whose id 0 is padding and 1 the OOV token, and padded with 0 (or cut) to
    ``output_sequence_length`` (else to the batch's longest). ``adapt`` learns the
    vocabulary, ``max_tokens`` ids in all. Other output modes and ngrams are not
    supported."""

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation",
                 split="whitespace", ngrams=None, output_mode="int",
                 output_sequence_length=None, pad_to_max_tokens=False, vocabulary=None,
                 **kwargs):
        super().__init__(**kwargs)
        if ngrams is not None or output_mode != "int" or pad_to_max_tokens:
            raise ValueError("TextVectorization: only output_mode='int' without ngrams or "
                             "pad_to_max_tokens is supported")
        if standardize not in (None, "lower_and_strip_punctuation", "lower",
                               "strip_punctuation") and not callable(standardize):
            raise ValueError(f"TextVectorization: unknown standardize {standardize!r}")
        if split not in (None, "whitespace", "character") and not callable(split):
            raise ValueError(f"TextVectorization: unknown split {split!r}")
        self.standardize, self.split = standardize, split
        self.output_mode, self.output_sequence_length = output_mode, output_sequence_length
        self.lookup = StringLookup(max_tokens=max_tokens, mask_token="", vocabulary=vocabulary)

    def _tokens(self, text: str) -> list:
        s = self.standardize
        if callable(s):
            text = s(text)
        if s in ("lower", "lower_and_strip_punctuation"):
            text = text.lower()
        if s in ("strip_punctuation", "lower_and_strip_punctuation"):
            text = re.sub(DEFAULT_STRIP, "", text)
        if callable(self.split):
            return list(self.split(text))
        if self.split == "character":
            return list(text)
        return text.split() if self.split == "whitespace" else [text]

    def _texts(self, data) -> list:
        return [t.decode() if isinstance(t, bytes) else str(t)
                for t in np.ravel(np.asarray(data, dtype=object))]

    def adapt(self, data, steps=None):
        from .preprocessing import _data_batches
        tokens = [tok for i, batch in enumerate(_data_batches(data))
                  if steps is None or i < steps
                  for text in self._texts(batch) for tok in self._tokens(text)]
        self.lookup.adapt(np.asarray(tokens, dtype=object))

    def set_vocabulary(self, vocabulary):
        self.lookup.set_vocabulary(vocabulary)

    def get_vocabulary(self, include_special_tokens=True):
        return self.lookup.get_vocabulary(include_special_tokens)

    def vocabulary_size(self):
        return self.lookup.vocabulary_size()

    def call(self, inputs):
        rows = [self.lookup(np.asarray(self._tokens(t), dtype=object)).numpy()
                if self._tokens(t) else np.zeros(0, np.int64) for t in self._texts(inputs)]
        n = self.output_sequence_length or max([len(r) for r in rows] + [0])
        out = np.zeros((len(rows), n), np.int64)
        for i, r in enumerate(rows):
            out[i, :min(n, len(r))] = r[:n]
        return A.constant(out)

    def get_config(self):
        return super().get_config() | {
            "max_tokens": self.lookup.max_tokens, "standardize": self.standardize
            if isinstance(self.standardize, (str, type(None))) else None,
            "split": self.split if isinstance(self.split, (str, type(None))) else None,
            "ngrams": None, "output_mode": self.output_mode,
            "output_sequence_length": self.output_sequence_length,
            "vocabulary": self.lookup.get_vocabulary(False)}


# -- Hashing: TensorFlow's Fingerprint64 (FarmHash's "na" Hash64), so bins match tf.keras --

_K0, _K1, _K2 = 0xc3a5c85c97cb3127, 0xb492b66fbe98f273, 0x9ae16a3b2f90404f
_MASK = (1 << 64) - 1


def _rot(v, s):
    return v if s == 0 else ((v >> s) | (v << (64 - s))) & _MASK


def _u64(b, i):
    return int.from_bytes(b[i:i + 8], "little")


def _u32(b, i):
    return int.from_bytes(b[i:i + 4], "little")


def _mix16(u, v, mul=0x9ddfea08eb382d69):
    a = ((u ^ v) * mul) & _MASK
    a ^= a >> 47
    b = ((v ^ a) * mul) & _MASK
    b ^= b >> 47
    return (b * mul) & _MASK


def _weak32(b, i, a, c):
    w, x, y, z = (_u64(b, i + 8 * j) for j in range(4))
    a = (a + w) & _MASK
    c = _rot((c + a + z) & _MASK, 21)
    t = a
    a = (a + x + y) & _MASK
    c = (c + _rot(a, 44)) & _MASK
    return (a + z) & _MASK, (c + t) & _MASK


def fingerprint64(b: bytes) -> int:
    """FarmHash's Fingerprint64 of ``b`` (its "na" Hash64), as TensorFlow computes it for
    ``strings.to_hash_bucket_fast``."""
    n = len(b)
    if n <= 16:
        if n >= 8:
            mul = (_K2 + n * 2) & _MASK
            a = (_u64(b, 0) + _K2) & _MASK
            c = _u64(b, n - 8)
            return _mix16(((_rot(c, 37) * mul) + a) & _MASK, ((_rot(a, 25) + c) * mul) & _MASK,
                          mul)
        if n >= 4:
            mul = (_K2 + n * 2) & _MASK
            return _mix16((n + (_u32(b, 0) << 3)) & _MASK, _u32(b, n - 4), mul)
        if n:
            y = b[0] + (b[n >> 1] << 8)
            z = n + (b[n - 1] << 2)
            v = ((y * _K2) ^ (z * _K0)) & _MASK
            return ((v ^ (v >> 47)) * _K2) & _MASK
        return _K2
    mul = (_K2 + n * 2) & _MASK
    if n <= 32:
        a, c = (_u64(b, 0) * _K1) & _MASK, _u64(b, 8)
        d, e = (_u64(b, n - 8) * mul) & _MASK, (_u64(b, n - 16) * _K2) & _MASK
        return _mix16((_rot((a + c) & _MASK, 43) + _rot(d, 30) + e) & _MASK,
                      (a + _rot((c + _K2) & _MASK, 18) + d) & _MASK, mul)
    if n <= 64:
        a, c = (_u64(b, 0) * _K2) & _MASK, _u64(b, 8)
        d, e = (_u64(b, n - 8) * mul) & _MASK, (_u64(b, n - 16) * _K2) & _MASK
        y = (_rot((a + c) & _MASK, 43) + _rot(d, 30) + e) & _MASK
        z = _mix16(y, (a + _rot((c + _K2) & _MASK, 18) + d) & _MASK, mul)
        e2, f = (_u64(b, 16) * mul) & _MASK, _u64(b, 24)
        g = ((y + _u64(b, n - 32)) * mul) & _MASK
        h = ((z + _u64(b, n - 24)) * mul) & _MASK
        return _mix16((_rot((e2 + f) & _MASK, 43) + _rot(g, 30) + h) & _MASK,
                      (e2 + _rot((f + a) & _MASK, 18) + g) & _MASK, mul)
    seed = 81
    x, y = seed, (seed * _K1 + 113) & _MASK
    z = (((y * _K2 + 113) & _MASK) ^ (((y * _K2 + 113) & _MASK) >> 47)) * _K2 & _MASK
    v, w = (0, 0), (0, 0)
    x = (x * _K2 + _u64(b, 0)) & _MASK
    end, last = ((n - 1) // 64) * 64, n - 64
    for s in range(0, end, 64):
        x = (_rot((x + y + v[0] + _u64(b, s + 8)) & _MASK, 37) * _K1) & _MASK
        y = (_rot((y + v[1] + _u64(b, s + 48)) & _MASK, 42) * _K1) & _MASK
        x ^= w[1]
        y = (y + v[0] + _u64(b, s + 40)) & _MASK
        z = (_rot((z + w[0]) & _MASK, 33) * _K1) & _MASK
        v = _weak32(b, s, (v[1] * _K1) & _MASK, (x + w[0]) & _MASK)
        w = _weak32(b, s + 32, (z + w[1]) & _MASK, (y + _u64(b, s + 16)) & _MASK)
        z, x = x, z
    mul = (_K1 + ((z & 0xff) << 1)) & _MASK
    s = last
    w = ((w[0] + ((n - 1) & 63)) & _MASK, w[1])
    v = ((v[0] + w[0]) & _MASK, v[1])
    w = ((w[0] + v[0]) & _MASK, w[1])
    x = (_rot((x + y + v[0] + _u64(b, s + 8)) & _MASK, 37) * mul) & _MASK
    y = (_rot((y + v[1] + _u64(b, s + 48)) & _MASK, 42) * mul) & _MASK
    x ^= (w[1] * 9) & _MASK
    y = (y + v[0] * 9 + _u64(b, s + 40)) & _MASK
    z = (_rot((z + w[0]) & _MASK, 33) * mul) & _MASK
    v = _weak32(b, s, (v[1] * mul) & _MASK, (x + w[0]) & _MASK)
    w = _weak32(b, s + 32, (z + w[1]) & _MASK, (y + _u64(b, s + 16)) & _MASK)
    z, x = x, z
    return _mix16((_mix16(v[0], w[0], mul) + ((y ^ (y >> 47)) * _K0) + z) & _MASK,
                  (_mix16(v[1], w[1], mul) + x) & _MASK, mul)


class Hashing(_Text):
    """Values hashed into ``num_bins`` bins as tf.keras does: strings (and integers, as
    their decimal text; floats truncated to integers first) by TensorFlow's Fingerprint64
    modulo the bins; with ``mask_value``, that value gets bin 0 and the others the bins
    after it. Eagerly (there are no string tensors); ``salt`` (a keyed SipHash in
    TensorFlow) is not supported."""

    def __init__(self, num_bins, mask_value=None, salt=None, output_mode="int",
                 sparse=False, **kwargs):
        super().__init__(**kwargs)
        if int(num_bins) < 1:
            raise ValueError(f"Hashing: num_bins must be positive; received {num_bins!r}")
        if salt is not None or sparse:
            raise ValueError("Hashing: salt (TensorFlow's keyed SipHash) and sparse outputs "
                             "are not supported")
        self.num_bins, self.mask_value = int(num_bins), mask_value
        self.output_mode = _mode(self, output_mode)

    def __call__(self, inputs, *args, **kwargs):
        self.built = True
        return self.call(inputs)  # (strings and numbers alike: hashed in numpy)

    def call(self, inputs):
        values = np.asarray(inputs.numpy() if isinstance(inputs, Tensor) else inputs,
                            dtype=object)
        bins = self.num_bins - 1 if self.mask_value is not None and self.num_bins > 1 \
            else self.num_bins

        def one(v):
            if self.mask_value is not None and bins != self.num_bins and v == self.mask_value:
                return 0
            text = v if isinstance(v, bytes) else str(int(v) if isinstance(
                v, (float, np.floating)) else v).encode()
            return fingerprint64(text) % bins + (bins != self.num_bins)
        ids = np.asarray([one(v) for v in values.ravel()], np.int64).reshape(values.shape)
        return encode(A.constant(ids), self.output_mode, self.num_bins)

    def get_config(self):
        return super().get_config() | {"num_bins": self.num_bins,
                                       "mask_value": self.mask_value, "salt": None,
                                       "output_mode": self.output_mode, "sparse": False}
