"""Loading the user's own data: .npy, .npz, .csv/.tsv files and folders of images.

Arrays of rank 2 are rows; rank 3 (n, H, W) are greyscale images; rank 4 is (n, C, H, W),
or (n, H, W, C) when only the last axis looks like channels (1, 3 or 4). uint8 data are
scaled to [0, 1]; float data are kept as they are. Pickled (object) arrays are never read.
"""

from __future__ import annotations

import csv
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .._validation import check_array
from .dataset import Dataset, split

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
ARRAY_SUFFIXES = (".npy", ".npz", ".csv", ".tsv")
_CHANNELS = (1, 3, 4)


# -- arrays ------------------------------------------------------------------------------
def _as_images(arr: np.ndarray, name: str, *, channels_last: bool | None = None) -> tuple[np.ndarray, tuple | None]:
    """Float32 rows (n, d) and image_shape (C, H, W) or None, from an array of rank 2-4.

    ``channels_last`` None guesses the layout of a rank-4 array: (n, H, W, C) when only the
    last axis has 1, 3 or 4 entries, else (n, C, H, W).
    """
    if arr.dtype.kind == "O":
        raise ValueError(f"{name} holds Python objects; aekit reads numeric arrays only.")
    uint8 = arr.dtype == np.uint8
    X = check_array(arr, name=name, allow_image=True)
    if uint8:
        X /= 255.0
    if X.ndim == 2:
        return X, None
    if X.ndim == 3:
        image_shape = (1, *X.shape[1:])
    else:
        if channels_last is None:
            channels_last = X.shape[-1] in _CHANNELS and X.shape[1] not in _CHANNELS
        if channels_last:
            X = X.transpose(0, 3, 1, 2)
        image_shape = X.shape[1:]
    return np.ascontiguousarray(X.reshape(X.shape[0], -1)), tuple(int(s) for s in image_shape)


def _as_vector(y, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (n,):
        raise ValueError(f"{name} has shape {y.shape}; expected one label per row, shape ({n},).")
    return y


def _as_labels(y: np.ndarray, name: str) -> tuple[np.ndarray, list[str] | None]:
    """int64 labels; strings or non-integer numbers are encoded as 0..k-1 with names."""
    if y.dtype.kind in "biu":
        return y.astype(np.int64), None
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError(f"{name} contain NaN or infinity.")
        if np.all(y == np.round(y)):
            return y.astype(np.int64), None
    if y.dtype.kind not in "fUS":
        raise ValueError(f"{name} have dtype {y.dtype}; labels must be integers or strings.")
    classes, codes = np.unique(y, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), [str(c) for c in classes]


def _range(X: np.ndarray) -> tuple[float, float]:
    return (float(X.min()), float(X.max())) if X.size else (0.0, 0.0)


def _from_arrays(name, source, X, y, test_fraction, random_state, *, X_test=None, y_test=None,
                 label_names=None, channels_last=None) -> Dataset:
    """Build a Dataset from raw arrays: split them, unless ``X_test`` is given."""
    X, image_shape = _as_images(X, f"{name} X", channels_last=channels_last)
    if X_test is None:
        if y is not None:
            y, names = _as_labels(_as_vector(y, X.shape[0], f"{name} y"), f"{name} labels")
            label_names = names or label_names
        X_tr, X_te, y_tr, y_te = split(X, y, test_fraction, random_state, stratify="try")
    else:
        X_tr, y_tr, y_te = X, None, None
        X_te, test_shape = _as_images(X_test, f"{name} x_test", channels_last=channels_last)
        if test_shape != image_shape or X_te.shape[1] != X.shape[1]:
            raise ValueError(
                f"{name}: x_train and x_test differ in shape per sample "
                f"({image_shape or X.shape[1]} vs {test_shape or X_te.shape[1]})."
            )
        if (y is None) != (y_test is None):
            raise ValueError(f"{name}: give labels for both x_train and x_test (y_train, y_test), or for neither.")
        if y is not None:
            n = X_tr.shape[0]
            both = np.concatenate([_as_vector(y, n, f"{name} y_train"), _as_vector(y_test, X_te.shape[0], f"{name} y_test")])
            codes, label_names = _as_labels(both, f"{name} labels")
            y_tr, y_te = codes[:n], codes[n:]
    return Dataset(name=name, X_train=X_tr, X_test=X_te, y_train=y_tr, y_test=y_te,
                   image_shape=image_shape, value_range=_range(X_tr), label_names=label_names,
                   source=str(source))


def load_npy(path: Path, test_fraction, random_state) -> Dataset:
    """A single array, no labels, split into train and test."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"cannot read {path} as a numpy .npy array: {exc}") from None
    if not isinstance(arr, np.ndarray):  # np.load reads by content: a zip archive comes back as an NpzFile
        if hasattr(arr, "close"):
            arr.close()
        raise ValueError(f"cannot read {path} as a numpy .npy array: it holds a {type(arr).__name__}, not one array "
                         "(is it an .npz archive named .npy?).")
    return _from_arrays(path.stem, path, arr, None, test_fraction, random_state)


def load_npz(path: Path, test_fraction, random_state) -> Dataset:
    """Keys x_train/x_test (+ y_train/y_test) used as given, or X (+ y) split."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k.lower(): npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
        # zlib.error: a damaged deflate stream; NotImplementedError: a zip compression numpy cannot read
        raise ValueError(f"cannot read {path} as a numpy .npz archive: {exc}") from None
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):  # np.load returns the raw bytes of a member that is not a .npy array
            raise ValueError(f"{path}: member {key!r} is not a numpy array (pickled or raw data); aekit reads "
                             "numeric arrays only.")
    name = path.stem
    if "x_train" in arrays and "x_test" in arrays:
        return _from_arrays(name, path, arrays["x_train"], arrays.get("y_train"), test_fraction, random_state,
                            X_test=arrays["x_test"], y_test=arrays.get("y_test"))
    for x_key, y_key in (("x", "y"), ("x_train", "y_train")):
        if x_key in arrays:
            return _from_arrays(name, path, arrays[x_key], arrays.get(y_key), test_fraction, random_state)
    if len(arrays) == 1:
        return _from_arrays(name, path, next(iter(arrays.values())), None, test_fraction, random_state)
    raise ValueError(
        f"{path} holds arrays {sorted(arrays)}; aekit expects keys 'x_train' and 'x_test' "
        "(optionally 'y_train', 'y_test'), or 'X' (optionally 'y'), or a single array."
    )


# -- CSV ---------------------------------------------------------------------------------
def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _column_index(label_column, header: list[str] | None, n_cols: int, path) -> int:
    if isinstance(label_column, str) and header is not None and label_column in header:
        return header.index(label_column)
    if isinstance(label_column, str) and label_column.lstrip("-").isdigit():
        label_column = int(label_column)
    if isinstance(label_column, (int, np.integer)) and not isinstance(label_column, bool):
        if -n_cols <= label_column < n_cols:
            return int(label_column) % n_cols
        raise ValueError(f"label_column={label_column} is out of range: {path} has {n_cols} columns.")
    names = f"; its columns are {header}" if header else " and it has no header row"
    raise ValueError(f"label_column={label_column!r} not found in {path}{names}.")


def load_csv(path: Path, test_fraction, random_state, label_column=None) -> Dataset:
    """Numeric CSV (TSV for .tsv) with an optional header row and an optional label column."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [(i, r) for i, r in enumerate(csv.reader(fh, delimiter=delimiter), start=1) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"cannot read {path} as a text CSV file: {exc}") from None
    if not rows:
        raise ValueError(f"{path} is empty.")
    header = None
    if not all(_is_number(c) for c in rows[0][1]):
        header = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
    if not rows:
        raise ValueError(f"{path} has a header row but no data rows.")
    n_cols = len(header) if header is not None else len(rows[0][1])
    for line, row in rows:
        if len(row) != n_cols:
            raise ValueError(f"{path}, row {line}: {len(row)} columns, but {'the header has' if header else 'row ' + str(rows[0][0]) + ' has'} {n_cols}.")
    label_idx = None if label_column is None else _column_index(label_column, header, n_cols, path)
    feature_cols = [j for j in range(n_cols) if j != label_idx]
    if not feature_cols:
        raise ValueError(f"{path} has no feature columns besides the label column.")
    cells = [[row[j] for j in feature_cols] for _, row in rows]
    try:
        X = np.array(cells, dtype=np.float64)
    except ValueError:
        for line, row in rows:
            for j in feature_cols:
                if not _is_number(row[j]):
                    col = f"column {header[j]!r}" if header else f"column {j}"
                    raise ValueError(f"{path}, row {line}, {col}: {row[j]!r} is not a number.") from None
        raise
    y = None
    if label_idx is not None:
        raw = [row[label_idx].strip() for _, row in rows]
        y = np.array([float(v) for v in raw]) if all(_is_number(v) for v in raw) else np.array(raw)
    return _from_arrays(path.stem, path, X, y, test_fraction, random_state)


# -- folders of images --------------------------------------------------------------------
def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def load_image_folder(path: Path, test_fraction, random_state) -> Dataset:
    """Images directly in ``path`` (no labels) or in one sub-folder per class."""
    from PIL import Image, UnidentifiedImageError

    classes = [d for d in sorted(path.iterdir()) if d.is_dir() and not d.name.startswith(".") and _images_in(d)]
    top = _images_in(path)
    if classes and top:
        raise ValueError(f"{path} mixes images ({top[0].name}, ...) with class sub-folders ({classes[0].name}, ...); use one layout.")
    if classes:
        files = [(f, k) for k, d in enumerate(classes) for f in _images_in(d)]
        label_names = [d.name for d in classes]
    else:
        files = [(f, -1) for f in top]
        label_names = None
    if not files:
        raise ValueError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)}), neither directly nor in sub-folders.")
    images, size, first = [], None, files[0][0]
    for f, _ in files:
        try:
            with Image.open(f) as im:
                im.load()
                if size is None:
                    size = im.size
                elif im.size != size:
                    raise ValueError(
                        f"images must all have the same size: {first} is {size[0]}x{size[1]} "
                        f"but {f} is {im.size[0]}x{im.size[1]}; resize them first."
                    )
                images.append(im.copy() if im.mode in ("L", "RGB") else im.convert("L" if im.mode == "1" else "RGB"))
        except (OSError, UnidentifiedImageError, SyntaxError, Image.DecompressionBombError) as exc:
            raise ValueError(f"cannot read image {f}: {exc}") from None
    grey = all(im.mode == "L" for im in images)
    arr = np.stack([np.asarray(im if grey else im.convert("RGB"), dtype=np.uint8) for im in images])
    y = None if label_names is None else np.array([k for _, k in files], dtype=np.int64)
    return _from_arrays(path.name, path, arr, y, test_fraction, random_state,
                        label_names=label_names, channels_last=not grey)
