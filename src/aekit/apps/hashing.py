"""Semantic hashing (Salakhutdinov & Hinton 2009): an autoencoder whose code is bits.

    hasher = aekit.SemanticHasher(n_components=32).fit(X_counts)     # documents (or images)
    bits = hasher.transform(X)                  # uint8 0/1, shape (n, 32)
    dist, idx = hasher.kneighbors(X_query, k=10)   # nearest training rows by Hamming distance
    dist, idx = hasher.radius_neighbors(X_query, r=2)   # the Hamming ball: every address within r

It is :class:`aekit.Autoencoder`'s model with the binary code in the code slot
(:class:`aekit.parts.codes.BinaryCode`, set by ``binary_code``), trained as a denoising
autoencoder with a bit-balance penalty; for word counts the encoder reads TF-IDF rows and the
decoder is scored by the multinomial loss (:func:`aekit.parts.losses.multinomial`):

    loss(x) = −Σ_w x_w log softmax(g(b))_w + λ Σ_j (ρ̂_j − ½)²,    b = 1[f(t(C(x))) > 0] (straight-through)

C masks a fraction p of the inputs (``noise='masking'``, ``noise_level`` p = 0.75), t(x) is
the unit-length TF-IDF row (``input_transform='auto'``: 'tfidf' for word counts, x itself
for images, whose loss is the cross-entropy), ρ̂_j the batch mean of bit j's σ(a_j) and
λ = ``bit_balance`` (10). At inference b(x) = 1[f(t(x)) > 0] ∈ {0, 1}ⁿ_bits; ``n_bits`` is the
code size ``n_components``. Search is by Hamming distance over the training rows' codes (kept
in ``train_codes_``, packed into 64-bit words) with :class:`aekit.apps.hamming.HammingIndex`.

Why these defaults (benchmarks/results/hashing.json and BENCHMARKS.md, 20 Newsgroups at 32 bits,
precision@100 of test documents querying the training documents): the hasher on raw counts
overfits its 11,314 training documents (0.389 after 30 epochs, below ITQ's 0.424 on TF-IDF).
Reading TF-IDF, masking noise and balanced bits each help (``hash_code_variants``); together,
at 50 epochs, they give 0.448 precision@100 and 0.336 mAP (mean of two seeds) against ITQ's
0.424 and 0.290, and the hasher is above every baseline at 8 to 128 bits; on MNIST images too
at 32 bits and more (precision@1000 0.661 against 0.643 at 32 bits).
"""

from __future__ import annotations

import numpy as np

from ..estimators import _NeuralEstimator
from ..settings import parameters

# The default is the variant that retrieved best in benchmarks/results/hash_code_variants.json
# (20 Newsgroups, 32 bits, one run, same split, counts input; precision@100): straight-through
# 0.398, noise injection σ = 1 0.365, σ = 4 0.332, the sigmoid code without pressure 0.391.
DEFAULT_BINARY_CODE = "straight-through"
DEFAULT_CODE_NOISE = 0.0


def _dense(X):
    """A scipy sparse matrix as a dense float32 array (aekit's models read dense rows)."""
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        return np.asarray(X.toarray(), dtype=np.float32)
    return X


class SemanticHasher(_NeuralEstimator):
    """An autoencoder with a binary code, for retrieval by Hamming distance.

    Documents (rows of word counts, dense or scipy sparse) get the multinomial loss; images in
    [0, 1] the cross-entropy ('auto'). ``transform`` gives bits (uint8 0/1), ``transform_packed``
    the same packed into uint64 words, ``kneighbors``/``radius_neighbors`` search the training
    rows' codes by Hamming distance.
    """

    _param_defaults = parameters("size", "input", "mlp", "binary", "loss", "corruption", "l1", "decay", "train",
                                 n_components=32, hidden_layer_sizes=(500, 500), binary_code=DEFAULT_BINARY_CODE,
                                 code_noise=DEFAULT_CODE_NOISE, input_transform="auto", noise="masking",
                                 noise_level=0.75, bit_balance=10.0, epochs=50)
    report_sections = ("hash-precision-recall", "code-map", "hash-queries", "loss-curves")
    report_metrics = ("hash-retrieval",)  # precision@100 and mAP, test rows querying the training rows

    def _check_combination(self, p) -> None:
        super()._check_combination(p)
        if p.binary_code is None:
            raise ValueError("SemanticHasher needs a binary code: binary_code='noise' or 'straight-through'.")

    @property
    def n_bits(self) -> int:
        """The code length in bits (``n_components``)."""
        return int(getattr(self, "n_components_", self.n_components))

    def fit(self, X, y=None, **kwargs):
        """Train on the rows of X (word counts or images; ``y`` is ignored) and keep their codes."""
        X = _dense(X)
        super().fit(X, **kwargs)
        self.train_codes_ = self.transform_packed(X)
        self._index = None
        return self

    def transform(self, X) -> np.ndarray:
        """The bits of each row: uint8 0/1, shape (n, n_bits)."""
        return super().transform(_dense(X)).astype(np.uint8)

    def transform_packed(self, X) -> np.ndarray:
        """The bits packed into 64-bit words, shape (n, ⌈n_bits / 64⌉) (see hamming.pack_bits)."""
        from .hamming import pack_bits

        return pack_bits(self.transform(X))

    def reconstruct(self, X) -> np.ndarray:
        return super().reconstruct(_dense(X))

    def reconstruction_error(self, X) -> np.ndarray:
        return super().reconstruction_error(_dense(X))

    def train_codes(self) -> np.ndarray:
        """The training rows' bits, uint8 (n_train, n_bits)."""
        from sklearn.utils.validation import check_is_fitted

        from .hamming import unpack_bits

        check_is_fitted(self)
        return unpack_bits(self.train_codes_, self.n_bits)

    def _search_index(self):
        from .hamming import HammingIndex

        if getattr(self, "_index", None) is None:
            self._index = HammingIndex().fit(self.train_codes())
        return self._index

    def kneighbors(self, X, k: int = 10):
        """(distances, indices), each (n, k): the k training rows nearest each row of X by
        Hamming distance between codes (ties in the index's order)."""
        from .._validation import check_positive_int

        k = check_positive_int(k, "k")
        n_train = self.train_codes_.shape[0] if hasattr(self, "train_codes_") else 0
        if n_train and k > n_train:
            raise ValueError(f"k={k} is more than the {n_train} training rows.")
        return self._search_index().kneighbors(self.transform(X), k)

    def radius_neighbors(self, X, r: int = 2):
        """(distances, indices): for each row of X, every training row whose code lies within
        Hamming distance r of its code (the Hamming ball, the semantic-hashing lookup)."""
        import numbers

        if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 0:
            raise ValueError(f"r must be an integer >= 0 (a Hamming distance); got {r!r}.")
        return self._search_index().radius_neighbors(self.transform(X), int(r))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = []  # transform gives uint8 bits, whatever the input
        return tags

    # -- save protocol: the model's arrays plus the training codes ------------------------
    def _get_state(self):
        arrays, meta = super()._get_state()
        arrays["train_codes"] = np.ascontiguousarray(self.train_codes_)
        return arrays, meta

    def _set_state(self, arrays, meta):
        arrays = dict(arrays)
        codes = arrays.pop("train_codes", None)
        if codes is None:
            raise ValueError("the file holds no training codes ('train_codes')")
        super()._set_state(arrays, meta)
        self.train_codes_ = np.asarray(codes)
        self._index = None
