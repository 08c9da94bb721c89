"""The named data sets (digits, mnist, fashion-mnist, olivetti-faces, cifar10) and ``load_dataset``.

Each named data set lives in its own folder under :func:`data_home`; its files are checked
against a table of accepted checksums before they are read, and downloaded from public
mirrors into the cache when missing (unless ``download=False``). Image pixels come out as
float32 in [0, 1], one flattened image per row in C, H, W order.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validation import check_fraction
from . import files as user_files
from . import text as text_files
from .cache import data_home, download, verify_file
from .dataset import Dataset, split
from .idx import read_idx

DIGIT_NAMES = [str(i) for i in range(10)]
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

# Accepted checksums per file. Every entry holds the official checksum; a few also accept a
# local copy whose bytes differ for a documented reason (see the comments).
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": (
            "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",  # official
            # The project's shared copy was rebuilt from the 70,000 MNIST images (the official
            # file could not be obtained): same image set and same label at every position,
            # but images of one class are in a different order, so the gzip's md5 differs.
            # See shared/data/mnist/SOURCE.txt.
            "md5:35b3f635ece96f6ef9ef33b60d961c02",
        ),
        "train-labels-idx1-ubyte.gz": ("md5:d53e105ee54ea40749a09fcbcd1e9432",),
        "t10k-images-idx3-ubyte.gz": ("md5:9fb629c4189551a2d022fa330f9573f3",),
        "t10k-labels-idx1-ubyte.gz": ("md5:ec29112dd5afa0611ce80d1b7f02629c",),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": ("md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",),
        "train-labels-idx1-ubyte.gz": ("md5:25c81989df183df01b3e8a0aad5dffbe",),
        "t10k-images-idx3-ubyte.gz": ("md5:bef4ecab320f06d8554ea6380940ec79",),
        "t10k-labels-idx1-ubyte.gz": ("md5:bb300cfdad3c16e7a12a480ee83cd310",),
    },
    "olivetti-faces": {
        "olivettifaces.mat": (
            "sha256:b612fb967f2dc77c9c62d3e1266e0c73d5fca46a4b8906c18e454d41af987794",  # official (figshare 5976027)
            # A 2013 re-save of the same .mat (another container, so other bytes) whose pixels
            # equal scikit-learn's element for element; see shared/data/olivetti-faces/SOURCE.txt.
            "md5:7be4afc20ba95152afb4c6b4b5d45c5b",
        ),
        # Derived from the .mat exactly as scikit-learn's fetch_olivetti_faces does (SOURCE.txt).
        "faces.npy": ("md5:07a0b12da3a900df29bf4bb54db20ddc",),
        "target.npy": ("md5:89ccc659179e4cce6f41c0a4a5734459",),
    },
    "cifar10": {"cifar-10-python.tar.gz": ("md5:c58f30108f718f92721af3b95e74349a",)},
    "20newsgroups": {
        "20news-bydate.tar.gz": (
            "sha256:8f1b2514ca22a5ade8fbb9cfa5727df95fa587f4c87b786e15c759fa66d95610",  # official (scikit-learn's)
            # The project's shared copy is a deterministic re-pack of the same 18846 message files
            # (another container, so other bytes); every message's md5 is in its MANIFEST.md5.
            # See shared/data/20newsgroups/SOURCE.txt.
            "md5:741ce1accca9a2084d7fe119e4e54caa",
        ),
    },
    # No official file exists for this subset: it is a new container made for the project.
    "cifar10-subset": {"cifar10_subset.npz": ("md5:6e69002dce0e60c5e40645e907e701dc",)},
}

MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "olivetti-faces": ("https://ndownloader.figshare.com/files/5976027",),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    "20newsgroups": ("https://ndownloader.figshare.com/files/5975967",),  # the mirror scikit-learn uses
}


@dataclass(frozen=True)
class Spec:
    """Static facts about a named data set (what ``aekit datasets`` lists)."""

    name: str
    description: str
    n_train: int
    n_test: int
    image_shape: tuple[int, int, int] | None  # None: not images (20newsgroups: word counts)
    n_classes: int


SPECS = {
    s.name: s
    for s in (
        Spec("digits", "scikit-learn's 8x8 handwritten digits (bundled, no download)", 1437, 360, (1, 8, 8), 10),
        Spec("mnist", "MNIST handwritten digits, 28x28 greyscale", 60000, 10000, (1, 28, 28), 10),
        Spec("fashion-mnist", "Zalando Fashion-MNIST clothing images, 28x28 greyscale", 60000, 10000, (1, 28, 28), 10),
        Spec("olivetti-faces", "Olivetti (AT&T) faces of 40 subjects, 64x64 greyscale", 320, 80, (1, 64, 64), 40),
        Spec("cifar10", "CIFAR-10 tiny colour images, 32x32 RGB (or the local 4000/1000 subset)", 50000, 10000, (3, 32, 32), 10),
        Spec("20newsgroups", "20 Newsgroups (by date) messages as counts of the 2000 most frequent training words",
             11314, 7532, None, 20),
    )
}
ALIASES = {"20news": "20newsgroups", "newsgroups": "20newsgroups", "fashion": "fashion-mnist", "fashionmnist": "fashion-mnist", "olivetti": "olivetti-faces", "cifar-10": "cifar10"}


def _missing_message(name: str, folder: Path, missing: list[str], reason: str) -> str:
    urls = MIRRORS.get(name, ())
    where = "\n".join(f"  {u}" for u in urls)
    first = "Run with download=True (aekit downloads them into that folder)" if reason == "download=False" else "Check the network"
    return (
        f"{name}: {len(missing)} file(s) missing in {folder}: {', '.join(missing)} ({reason}). "
        f"{first}, or fetch them yourself from:\n{where}\n"
        f"and place them in {folder} (or point $AEKIT_DATA / data_dir at a folder holding a '{name}' sub-folder)."
    )


def _ensure(name: str, folder: Path, filenames, download_ok: bool, urls=None) -> list[Path]:
    """Make sure every file is in ``folder`` with an accepted checksum; download when allowed."""
    table = CHECKSUMS[name]
    missing = [f for f in filenames if not (folder / f).is_file()]
    if missing:
        if not download_ok:
            raise ValueError(_missing_message(name, folder, missing, "download=False"))
        for f in missing:
            mirrors = urls or [base + f for base in MIRRORS[name]]
            try:
                download(mirrors, folder / f, table[f])
            except ValueError as exc:
                raise ValueError(f"{exc}\n" + _missing_message(name, folder, missing, "download failed")) from None
    paths = [folder / f for f in filenames]
    for p in paths:
        verify_file(p, table[p.name])
    return paths


def _images_to_rows(images: np.ndarray) -> np.ndarray:
    """uint8 (n, ...) images -> float32 (n, d) in [0, 1]."""
    X = images.reshape(images.shape[0], -1).astype(np.float32)
    X /= 255.0
    return X


# -- loaders ------------------------------------------------------------------------------
def _load_digits(data_dir, download_ok, test_fraction, random_state) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    X_tr, X_te, y_tr, y_te = split(X, y, test_fraction, random_state, stratify="always")
    return Dataset("digits", X_tr, X_te, y_tr, y_te, (1, 8, 8), (0.0, 1.0), list(DIGIT_NAMES),
                   "sklearn.datasets.load_digits")


def _load_idx_set(name: str, label_names, data_dir, download_ok) -> Dataset:
    folder = data_home(data_dir) / name
    paths = _ensure(name, folder, IDX_FILES, download_ok)
    arrays = [read_idx(p) for p in paths]
    for (images, labels), split_name in ((arrays[:2], "train"), (arrays[2:], "t10k")):
        if images.dtype != np.uint8 or images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{folder}: {split_name} images {images.shape} {images.dtype} and labels {labels.shape} "
                "do not form an MNIST-style pair (uint8 (n, H, W) images, n labels)."
            )
        if labels.size and (labels.min() < 0 or labels.max() >= len(label_names)):
            raise ValueError(f"{folder}: {split_name} labels outside 0..{len(label_names) - 1}.")
    h, w = arrays[0].shape[1:]
    return Dataset(name, _images_to_rows(arrays[0]), _images_to_rows(arrays[2]),
                   arrays[1].astype(np.int64), arrays[3].astype(np.int64), (1, h, w), (0.0, 1.0),
                   list(label_names), str(folder))


def _load_mnist(data_dir, download_ok, test_fraction, random_state) -> Dataset:
    return _load_idx_set("mnist", DIGIT_NAMES, data_dir, download_ok)


def _load_fashion(data_dir, download_ok, test_fraction, random_state) -> Dataset:
    return _load_idx_set("fashion-mnist", FASHION_NAMES, data_dir, download_ok)


def olivetti_from_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(faces (400, 64, 64) float32 in [0, 1], target) exactly as scikit-learn derives them."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise ValueError(f"reading {path} needs scipy (pip install scipy), or provide faces.npy + target.npy.") from None
    try:
        faces = loadmat(str(path))["faces"].T.copy()
    except Exception as exc:  # scipy raises many kinds of errors on damaged files
        raise ValueError(f"cannot read {path} as the Olivetti .mat file: {exc}") from None
    if faces.shape != (400, 4096):
        raise ValueError(f"{path}: 'faces' has shape {faces.T.shape}; expected (4096, 400).")
    faces = np.float32(faces)
    faces = faces - faces.min()
    faces /= faces.max()
    faces = faces.reshape((400, 64, 64)).transpose(0, 2, 1)
    return np.ascontiguousarray(faces), np.array([i // 10 for i in range(400)], dtype=np.int64)


def _load_olivetti(data_dir, download_ok, test_fraction, random_state) -> Dataset:
    folder = data_home(data_dir) / "olivetti-faces"
    if (folder / "faces.npy").is_file() and (folder / "target.npy").is_file():
        faces_p, target_p = _ensure("olivetti-faces", folder, ("faces.npy", "target.npy"), False)
        try:
            faces, target = np.load(faces_p, allow_pickle=False), np.load(target_p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"cannot read {folder}/faces.npy, target.npy: {exc}") from None
        source = faces_p
    else:
        (source,) = _ensure("olivetti-faces", folder, ("olivettifaces.mat",), download_ok,
                            urls=MIRRORS["olivetti-faces"])
        faces, target = olivetti_from_mat(source)
    if faces.shape != (400, 64, 64) or faces.dtype != np.float32 or target.shape != (400,):
        raise ValueError(f"{folder}: expected faces float32 (400, 64, 64) and 400 targets; got {faces.shape} {faces.dtype}, {target.shape}.")
    if not (np.isfinite(faces).all() and faces.min() >= 0 and faces.max() <= 1):
        raise ValueError(f"{folder}: faces must be finite values in [0, 1].")
    X = np.ascontiguousarray(faces.reshape(400, -1))
    X_tr, X_te, y_tr, y_te = split(X, target.astype(np.int64), test_fraction, random_state, stratify="always")
    return Dataset("olivetti-faces", X_tr, X_te, y_tr, y_te, (1, 64, 64), (0.0, 1.0),
                   [f"subject {i}" for i in range(40)], str(source))


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays only; anything else is refused."""

    @staticmethod
    def _allowed():
        try:
            from numpy._core import multiarray
        except ImportError:  # numpy < 2
            from numpy.core import multiarray
        import _codecs

        allowed = {
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): _codecs.encode,  # how protocol-2 pickles spell bytes
        }
        for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            allowed[(module, "_reconstruct")] = multiarray._reconstruct
            allowed[(module, "scalar")] = multiarray.scalar
        for module in ("builtins", "__builtin__"):
            for name, obj in (("dict", dict), ("list", list), ("bytes", bytes), ("str", str), ("int", int)):
                allowed[(module, name)] = obj
        return allowed

    def find_class(self, module, name):
        obj = self._allowed().get((module, name))
        if obj is None:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return obj


def read_cifar_batch(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (n, 3072) rows in C,H,W order, int64 labels) from one CIFAR-10 python batch."""
    try:
        batch = _SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:  # a damaged or hostile pickle: never let it through
        raise ValueError(f"cannot read CIFAR-10 batch {name}: {exc}") from None
    if not isinstance(batch, dict):
        raise ValueError(f"CIFAR-10 batch {name} is not a dict.")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    X = batch.get("data")
    y = np.asarray(batch.get("labels", []))
    if not isinstance(X, np.ndarray) or X.dtype != np.uint8 or X.ndim != 2 or X.shape[1] != 3072 or y.shape != (X.shape[0],):
        raise ValueError(f"CIFAR-10 batch {name} lacks uint8 'data' (n, 3072) with n 'labels'.")
    return X, y.astype(np.int64)


def cifar10_from_tarball(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read the official cifar-10-python.tar.gz without extracting it to disk."""
    wanted = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted:
                    batches[base] = read_cifar_batch(tar.extractfile(member).read(), base)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"cannot read {path} as the CIFAR-10 python tarball: {exc}") from None
    missing = [w for w in wanted if w not in batches]
    if missing:
        raise ValueError(f"{path} lacks the CIFAR-10 batches {missing}.")
    X_train = np.concatenate([batches[w][0] for w in wanted[:5]])
    y_train = np.concatenate([batches[w][1] for w in wanted[:5]])
    return X_train, batches["test_batch"][0], y_train, batches["test_batch"][1]


def _load_cifar10(data_dir, download_ok, test_fraction, random_state) -> Dataset:
    home = data_home(data_dir)
    tarball = home / "cifar10" / "cifar-10-python.tar.gz"
    subset = home / "cifar10-subset" / "cifar10_subset.npz"
    if tarball.is_file() or not subset.is_file():
        (path,) = _ensure("cifar10", tarball.parent, (tarball.name,), download_ok, urls=MIRRORS["cifar10"])
        X_tr, X_te, y_tr, y_te = cifar10_from_tarball(path)  # rows are already R, G, B planes
    else:
        (path,) = _ensure("cifar10-subset", subset.parent, (subset.name,), False)
        try:
            with np.load(path, allow_pickle=False) as z:
                x_train, y_tr, x_test, y_te = (z[k] for k in ("x_train", "y_train", "x_test", "y_test"))
        except (ValueError, OSError, KeyError, EOFError) as exc:
            raise ValueError(f"cannot read {path} as the CIFAR-10 subset: {exc}") from None
        X_tr, X_te = (np.ascontiguousarray(x.transpose(0, 3, 1, 2)) for x in (x_train, x_test))  # HWC -> CHW
    return Dataset("cifar10", _images_to_rows(X_tr), _images_to_rows(X_te), y_tr.astype(np.int64),
                   y_te.astype(np.int64), (3, 32, 32), (0.0, 1.0), list(CIFAR10_NAMES), str(path))


def _load_20newsgroups(data_dir, download_ok, test_fraction, random_state) -> Dataset:
    folder = data_home(data_dir) / "20newsgroups"
    (path,) = _ensure("20newsgroups", folder, ("20news-bydate.tar.gz",), download_ok, urls=MIRRORS["20newsgroups"])
    return text_files.load_newsgroups_tarball(path)


LOADERS = {
    "digits": _load_digits,
    "mnist": _load_mnist,
    "fashion-mnist": _load_fashion,
    "olivetti-faces": _load_olivetti,
    "cifar10": _load_cifar10,
    "20newsgroups": _load_20newsgroups,
}


def _canonical(name: str) -> str | None:
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    return key if key in LOADERS else None


# -- public API ---------------------------------------------------------------------------
def load_dataset(name_or_path, *, data_dir=None, download=True, test_fraction=0.2, random_state=0,
                 label_column=None, text_column=None) -> Dataset:
    """Load a named data set (see :func:`available_datasets`) or a user file / folder.

    Named sets keep their official train/test split; ``digits``, ``olivetti-faces`` and user
    data are split with ``test_fraction`` / ``random_state`` (stratified by label when
    possible). ``label_column`` picks the label column of a CSV file (name or index).

    Text (:mod:`aekit.data.text`) becomes word counts over the 2000 most frequent training
    words: ``20newsgroups``; a folder with one sub-folder of ``.txt`` files per class; a CSV
    with a header row and a text column (``text_column``, default the column named "text"
    when there is one), labels from ``label_column`` (a column name).
    """
    test_fraction = check_fraction(test_fraction, "test_fraction")
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ValueError(f"load_dataset takes a data set name or a path; got {type(name_or_path).__name__}.")
    name = _canonical(name_or_path) if isinstance(name_or_path, str) else None
    if name is not None:
        if label_column is not None or text_column is not None:
            raise ValueError(f"label_column and text_column apply to CSV files only, not to the named data set {name!r}.")
        return LOADERS[name](data_dir, download, test_fraction, random_state)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        text = str(name_or_path)
        if isinstance(name_or_path, os.PathLike) or os.sep in text or "/" in text or path.suffix:
            raise ValueError(f"file not found: {path}")
        raise ValueError(f"unknown data set {text!r}: not a known name ({', '.join(LOADERS)}) and no such file or folder.")
    if text_column is not None and path.suffix.lower() not in (".csv", ".tsv"):
        raise ValueError(f"text_column applies to CSV files only, not to {path}.")
    if path.is_dir():
        loader = user_files.load_image_folder
        if text_files.is_text_folder(path):
            loader = text_files.load_text_folder
    else:
        suffix = path.suffix.lower()
        loader = {".npy": user_files.load_npy, ".npz": user_files.load_npz}.get(suffix)
        if suffix in (".csv", ".tsv") and (text_column is not None or _has_text_header(path)):
            return text_files.load_text_csv(path, test_fraction, random_state, text_column=text_column or "text",
                                      label_column=label_column)
        if suffix in (".csv", ".tsv"):
            return user_files.load_csv(path, test_fraction, random_state, label_column=label_column)
        if loader is None:
            raise ValueError(f"{path}: unsupported file type {suffix!r}; aekit reads .npy, .npz, .csv, .tsv files and folders of images.")
    if label_column is not None:
        raise ValueError("label_column applies to CSV files only.")
    return loader(path, test_fraction, random_state)


def _has_text_header(path: Path) -> bool:
    """A CSV whose first row names a column "text" (a document per row)."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            first = next(csv.reader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ","), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return "text" in [c.strip() for c in first]


def _local_files(name: str, folder: Path) -> list[dict]:
    return [{"file": f, "present": (folder / f).is_file()} for f in CHECKSUMS[name]]


def available_datasets(data_dir=None) -> list[dict]:
    """One dict per named data set: name, description, sizes, image_shape, local files.

    Keys: name, description, n_train, n_test, image_shape, n_classes, location (its folder),
    files (list of {file, present}), available (loadable without downloading),
    downloadable (can be fetched from a public mirror).
    """
    home = data_home(data_dir)
    out = []
    for spec in SPECS.values():
        info = {"name": spec.name, "description": spec.description, "n_train": spec.n_train,
                "n_test": spec.n_test, "image_shape": spec.image_shape, "n_classes": spec.n_classes}
        if spec.name == "digits":
            info.update(location="bundled with scikit-learn", files=[], available=True, downloadable=False)
        elif spec.name == "cifar10":
            full = _local_files("cifar10", home / "cifar10")
            sub = _local_files("cifar10-subset", home / "cifar10-subset")
            if not full[0]["present"] and sub[0]["present"]:
                info.update(n_train=4000, n_test=1000, location=str(home / "cifar10-subset"), files=sub,
                            description="CIFAR-10 local subset: first 4000 train / 1000 test images, 32x32 RGB")
            else:
                info.update(location=str(home / "cifar10"), files=full)
            info.update(available=full[0]["present"] or sub[0]["present"], downloadable=True)
        else:
            files = _local_files(spec.name, home / spec.name)
            present = {f["file"] for f in files if f["present"]}
            if spec.name == "olivetti-faces":
                ok = {"faces.npy", "target.npy"} <= present or "olivettifaces.mat" in present
            else:
                ok = len(present) == len(files)
            info.update(location=str(home / spec.name), files=files, available=ok, downloadable=True)
        out.append(info)
    return out
