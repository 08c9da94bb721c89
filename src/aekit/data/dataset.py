"""The :class:`Dataset` every loader returns, and the train/test split they share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from .._validation import check_fraction, check_random_state


@dataclass(repr=False)
class Dataset:
    """A data set ready for an autoencoder: flat float32 rows, optional labels.

    ``X_train`` / ``X_test`` are C-contiguous float32 arrays of shape (n, d). When the rows
    are images, ``image_shape`` is (C, H, W) and each row is ``image.reshape(-1)`` in C, H, W
    order, so ``ds.images(X)`` gives back an (n, C, H, W) array. For documents the rows are word
    counts, ``vocabulary`` names the columns and ``texts_train``/``texts_test`` hold the start of
    each document (see :mod:`aekit.data.text`).
    """

    name: str
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray | None
    y_test: np.ndarray | None
    image_shape: tuple[int, int, int] | None
    value_range: tuple[float, float]
    label_names: list[str] | None
    source: str
    vocabulary: list[str] | None = None      # text sets: the word of each column
    texts_train: list[str] | None = None     # text sets: each document's first characters, for display
    texts_test: list[str] | None = None

    def __post_init__(self):
        d = self.X_train.shape[1] if self.X_train.ndim == 2 else None
        if d is None or self.X_test.ndim != 2 or self.X_test.shape[1] != d:
            raise ValueError(
                f"{self.name}: X_train and X_test must be 2-D with the same number of columns; "
                f"got {self.X_train.shape} and {self.X_test.shape}."
            )
        for X, y, split in ((self.X_train, self.y_train, "train"), (self.X_test, self.y_test, "test")):
            if y is not None and y.shape != (X.shape[0],):
                raise ValueError(f"{self.name}: y_{split} has shape {y.shape}; expected ({X.shape[0]},).")
        if self.image_shape is not None:
            self.image_shape = tuple(int(s) for s in self.image_shape)
            if len(self.image_shape) != 3 or int(np.prod(self.image_shape)) != d:
                raise ValueError(f"{self.name}: image_shape {self.image_shape} does not match {d} features per row.")
        self.value_range = (float(self.value_range[0]), float(self.value_range[1]))
        if self.vocabulary is not None and len(self.vocabulary) != d:
            raise ValueError(f"{self.name}: a vocabulary of {len(self.vocabulary)} words for {d} columns.")

    @property
    def n_features(self) -> int:
        """Number of columns d of ``X_train`` / ``X_test``."""
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int | None:
        """Number of label names, or distinct training labels; None without labels."""
        if self.label_names is not None:
            return len(self.label_names)
        return None if self.y_train is None else int(np.unique(self.y_train).size)

    def images(self, X: np.ndarray | None = None) -> np.ndarray:
        """Rows of ``X`` (default ``X_train``) reshaped to (n, C, H, W)."""
        if self.image_shape is None:
            raise ValueError(f"data set {self.name!r} holds no images (image_shape is None).")
        X = self.X_train if X is None else np.asarray(X)
        return X.reshape(-1, *self.image_shape)

    def __repr__(self) -> str:
        labels = "no labels" if self.y_train is None else f"{self.n_classes} classes"
        return (
            f"Dataset(name={self.name!r}, train={self.X_train.shape[0]}x{self.n_features}, "
            f"test={self.X_test.shape[0]}x{self.n_features}, image_shape={self.image_shape}, "
            f"{labels}, source={self.source!r})"
        )


def split(X: np.ndarray, y: np.ndarray | None, test_fraction, random_state, *, stratify: str = "try"):
    """Split rows into (X_train, X_test, y_train, y_test).

    ``stratify``: "always" (stratified by ``y``, a ValueError when impossible), "try"
    (stratified when every class can appear in both parts, else a plain shuffled split) or
    "never". ``test_fraction`` 0 gives an empty test set.
    """
    test_fraction = check_fraction(test_fraction, "test_fraction")
    seed = check_random_state(random_state)
    n = X.shape[0]
    if test_fraction == 0:
        empty_y = None if y is None else y[:0]
        return X, X[:0], y, empty_y
    if n < 2:
        raise ValueError(f"cannot split {n} sample(s) into a train and a test set; provide at least 2 rows.")
    strat = None
    if y is not None and stratify != "never":
        counts = np.unique(y, return_counts=True)[1]
        n_test = int(np.ceil(test_fraction * n))
        feasible = counts.min() >= 2 and counts.size <= n_test and counts.size <= n - n_test
        if feasible:
            strat = y
        elif stratify == "always":
            raise ValueError(
                f"cannot split {n} samples of {counts.size} classes (smallest class: {counts.min()}) "
                f"with test_fraction={test_fraction} so that every class is in both parts; "
                "choose a test_fraction that leaves at least one sample of each class on each side."
            )
    arrays = (X,) if y is None else (X, y)
    try:
        parts = train_test_split(*arrays, test_size=test_fraction, random_state=seed, stratify=strat)
    except ValueError as exc:
        raise ValueError(f"cannot split {n} samples with test_fraction={test_fraction}: {exc}") from None
    if y is None:
        return np.ascontiguousarray(parts[0]), np.ascontiguousarray(parts[1]), None, None
    X_tr, X_te, y_tr, y_te = parts
    return np.ascontiguousarray(X_tr), np.ascontiguousarray(X_te), y_tr, y_te
