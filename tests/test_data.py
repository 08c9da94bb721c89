"""Tests for aekit.data: named data sets, checksums, IDX parsing, downloads, user files.

Real data come from $AEKIT_DATA (set by conftest); downloads are tested against file:// URLs
only, never the network.
"""

import gzip
import hashlib
import io
import os
import pickle
import shutil
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import requires_mnist, requires_olivetti

from aekit.data import Dataset, available_datasets, data_home, load_dataset
from aekit.data import cache, registry
from aekit.data.idx import read_idx

DATA = Path(os.environ.get("AEKIT_DATA", "/nonexistent"))
requires_fashion = pytest.mark.skipif(not (DATA / "fashion-mnist").is_dir(), reason="Fashion-MNIST not found under $AEKIT_DATA")
requires_cifar_subset = pytest.mark.skipif(not (DATA / "cifar10-subset").is_dir(), reason="CIFAR-10 subset not found under $AEKIT_DATA")


def md5(path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def check_common(ds: Dataset):
    for X in (ds.X_train, ds.X_test):
        assert X.dtype == np.float32 and X.ndim == 2 and X.flags.c_contiguous
    if ds.image_shape is not None:
        assert int(np.prod(ds.image_shape)) == ds.n_features
    for y in (ds.y_train, ds.y_test):
        assert y is None or y.dtype == np.int64


# -- named data sets ----------------------------------------------------------------------
def test_digits_is_embedded_and_stratified():
    ds = load_dataset("digits")
    check_common(ds)
    assert ds.X_train.shape == (1437, 64) and ds.X_test.shape == (360, 64)
    assert ds.X_train.min() == 0.0 and ds.X_train.max() == 1.0 and ds.value_range == (0.0, 1.0)
    assert ds.image_shape == (1, 8, 8) and ds.images(ds.X_test).shape == (360, 1, 8, 8)
    assert ds.label_names == [str(i) for i in range(10)]
    full = np.bincount(np.concatenate([ds.y_train, ds.y_test])) / 1797
    np.testing.assert_allclose(np.bincount(ds.y_test) / 360, full, atol=0.01)  # stratified
    again = load_dataset("digits", random_state=0)
    np.testing.assert_array_equal(again.X_test, ds.X_test)
    other = load_dataset("digits", random_state=1, test_fraction=0.5)
    assert other.X_test.shape[0] == 899 and not np.array_equal(other.y_test[:50], ds.y_test[:50])


@requires_mnist
def test_mnist_shapes_counts_and_accepted_checksums():
    ds = load_dataset("mnist", download=False)
    check_common(ds)
    assert ds.X_train.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert ds.image_shape == (1, 28, 28) and ds.value_range == (0.0, 1.0)
    assert 0.0 <= ds.X_train.min() and ds.X_train.max() == 1.0
    assert np.bincount(ds.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(ds.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # The shared train-images is the documented rebuilt copy: accepted, but not the official md5.
    assert md5(DATA / "mnist" / "train-images-idx3-ubyte.gz") in {
        c.split(":")[1] for c in registry.CHECKSUMS["mnist"]["train-images-idx3-ubyte.gz"]
    }


@requires_fashion
def test_fashion_mnist_matches_source_txt():
    ds = load_dataset("fashion-mnist", download=False)
    check_common(ds)
    assert ds.X_train.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert np.bincount(ds.y_train).tolist() == [6000] * 10 and np.bincount(ds.y_test).tolist() == [1000] * 10
    assert abs(float(ds.X_train.mean(dtype=np.float64)) - 72.94 / 255) < 0.01 / 255
    assert abs(float(ds.X_test.mean(dtype=np.float64)) - 73.147 / 255) < 0.001 / 255
    assert ds.label_names[0] == "T-shirt/top" and ds.label_names[9] == "Ankle boot"


@requires_olivetti
def test_olivetti_faces_npy_and_mat_agree(tmp_path):
    ds = load_dataset("olivetti-faces", download=False)
    check_common(ds)
    assert ds.X_train.shape == (320, 4096) and ds.X_test.shape == (80, 4096)
    assert ds.image_shape == (1, 64, 64) and len(ds.label_names) == 40
    assert np.bincount(ds.y_train).tolist() == [8] * 40 and np.bincount(ds.y_test).tolist() == [2] * 40
    X = np.concatenate([ds.X_train, ds.X_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    first = [0.30991736, 0.3677686, 0.41735536, 0.44214877, 0.5289256]
    hits = np.flatnonzero(np.abs(X[:, :5] - first).max(axis=1) < 1e-6)
    assert len(hits) == 1 and y[hits[0]] == 0
    # The same faces derived from the .mat file alone (as scikit-learn does).
    pytest.importorskip("scipy")
    (tmp_path / "olivetti-faces").mkdir()
    shutil.copy(DATA / "olivetti-faces" / "olivettifaces.mat", tmp_path / "olivetti-faces")
    from_mat = load_dataset("olivetti", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(from_mat.X_train, ds.X_train)
    np.testing.assert_array_equal(from_mat.y_test, ds.y_test)


@requires_cifar_subset
def test_cifar10_subset_in_chw_order():
    ds = load_dataset("cifar10", download=False)
    check_common(ds)
    assert ds.X_train.shape == (4000, 3072) and ds.X_test.shape == (1000, 3072)
    assert ds.image_shape == (3, 32, 32)
    red = ds.images(ds.X_train)[0, 0].reshape(-1)[:34] * 255
    expected = [59, 43, 50, 68, 98, 119, 139, 145, 149, 149, 131, 125, 142, 144, 137, 129, 137, 134,
                124, 139, 139, 133, 136, 139, 152, 163, 168, 159, 158, 158, 152, 148, 16, 0]
    np.testing.assert_allclose(red, expected, atol=1e-3)
    test0 = ds.images(ds.X_test)[0] * 255
    np.testing.assert_allclose(test0[:, 0, :2], [[158, 159], [112, 111], [49, 47]], atol=1e-3)
    assert ds.y_train[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert ds.label_names[3] == "cat"


def test_available_datasets_lists_names_and_files(tmp_path):
    infos = {d["name"]: d for d in available_datasets(tmp_path)}
    assert set(infos) == {"digits", "mnist", "fashion-mnist", "olivetti-faces", "cifar10", "20newsgroups"}
    assert infos["digits"]["available"] and not infos["mnist"]["available"]
    assert infos["mnist"]["location"] == str(tmp_path / "mnist")
    assert [f["present"] for f in infos["mnist"]["files"]] == [False] * 4


def test_unknown_name_and_missing_path():
    with pytest.raises(ValueError, match="mnist.*fashion-mnist"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="file not found"):
        load_dataset("no/such/file.npy")
    with pytest.raises(ValueError, match="test_fraction"):
        load_dataset("digits", test_fraction=1.5)


# -- checksums and IDX --------------------------------------------------------------------
@requires_mnist
def test_modified_copy_is_rejected_and_missing_files_explained(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in registry.IDX_FILES:
        shutil.copy(DATA / "mnist" / name, folder)
    target = folder / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(target.read_bytes())
    data[100] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch") as err:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    assert str(target) in str(err.value) and "ec29112dd5afa0611ce80d1b7f02629c" in str(err.value)
    assert hashlib.md5(bytes(data)).hexdigest() in str(err.value)
    target.unlink()
    with pytest.raises(ValueError, match="missing.*t10k-labels-idx1-ubyte.gz") as err:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    assert str(folder) in str(err.value)


def idx_bytes(arr: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[arr.dtype]
    return struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def test_idx_reader_checks_header_and_size(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    good = tmp_path / "a-idx3-ubyte.gz"
    good.write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(read_idx(good), arr)
    ints = np.array([1, -2, 70000], dtype=">i4")
    (tmp_path / "ints").write_bytes(idx_bytes(ints))
    assert read_idx(tmp_path / "ints").tolist() == [1, -2, 70000]

    cut = tmp_path / "cut-idx3-ubyte.gz"
    cut.write_bytes(gzip.compress(idx_bytes(arr)[:-5]))
    with pytest.raises(ValueError, match=r"cut-idx3-ubyte.gz is truncated.*\(2, 3, 4\)"):
        read_idx(cut)
    bad_gzip = tmp_path / "b.gz"
    bad_gzip.write_bytes(good.read_bytes()[:-10])
    with pytest.raises(ValueError, match="damaged gzip"):
        read_idx(bad_gzip)
    not_gzip = tmp_path / "c.gz"
    not_gzip.write_bytes(idx_bytes(arr))
    with pytest.raises(ValueError, match="not a gzip file"):
        read_idx(not_gzip)
    bad_magic = tmp_path / "d"
    bad_magic.write_bytes(b"\x01\x02\x03\x04" + b"\x00" * 20)
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(bad_magic)


# -- downloads (file:// only) -------------------------------------------------------------
def test_download_verifies_checksum_and_leaves_nothing_on_mismatch(tmp_path):
    src = tmp_path / "src" / "blob.bin"
    src.parent.mkdir()
    src.write_bytes(os.urandom(3000))
    good = f"md5:{md5(src)}"
    cache_dir = tmp_path / "cache"
    with pytest.raises(ValueError, match="checksum mismatch") as err:
        cache.download([src.as_uri()], cache_dir / "blob.bin", ("md5:" + "0" * 32,), quiet=True)
    assert md5(src) in str(err.value)
    assert not cache_dir.exists() or list(cache_dir.iterdir()) == []
    missing = (tmp_path / "src" / "nope.bin").as_uri()
    out = cache.download([missing, src.as_uri()], cache_dir / "blob.bin", (good,), quiet=True)  # 2nd mirror
    assert out.read_bytes() == src.read_bytes() and sorted(p.name for p in cache_dir.iterdir()) == ["blob.bin"]


@requires_mnist
def test_load_dataset_downloads_missing_files_from_mirror(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in registry.IDX_FILES:
        shutil.copy(DATA / "mnist" / name, mirror)
    monkeypatch.setitem(registry.MIRRORS, "mnist", (mirror.as_uri() + "/",))
    ds = load_dataset("mnist", data_dir=tmp_path / "cache")
    assert ds.X_train.shape == (60000, 784)
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(registry.IDX_FILES)


def py2_cifar_batch(data: np.ndarray, labels) -> bytes:
    """A protocol-2 pickle laid out as Python 2 + numpy wrote the official CIFAR-10 batches."""
    n, m = data.shape
    out = bytearray(b"\x80\x02}q\x00(U\x04data")
    out += b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85U\x01b\x87Rq\x03("
    out += b"K\x01M" + struct.pack("<H", n) + b"M" + struct.pack("<H", m) + b"\x86"
    out += b"cnumpy\ndtype\nq\x04U\x02u1K\x00K\x01\x87Rq\x05(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    out += b"\x89T" + struct.pack("<I", data.nbytes) + data.tobytes() + b"tb"
    out += b"U\x06labels]q\x06(" + b"".join(b"K" + bytes([v]) for v in labels) + b"eu."
    return bytes(out)


def test_cifar10_tarball_read_safely(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    tar_path = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    tar_path.parent.mkdir()
    batches = {}
    with tarfile.open(tar_path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            batches[name] = (rng.integers(0, 256, (3, 3072), dtype=np.uint8), rng.integers(0, 10, 3).tolist())
            blob = py2_cifar_batch(*batches[name])
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    with pytest.raises(ValueError, match="checksum mismatch"):  # not the official tarball
        load_dataset("cifar10", data_dir=tmp_path, download=False)
    monkeypatch.setitem(registry.CHECKSUMS, "cifar10", {tar_path.name: (f"md5:{md5(tar_path)}",)})
    ds = load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert ds.X_train.shape == (15, 3072) and ds.X_test.shape == (3, 3072)
    np.testing.assert_allclose(ds.X_train[:3] * 255, batches["data_batch_1"][0], atol=1e-3)  # rows already CHW
    assert ds.y_test.tolist() == batches["test_batch"][1]
    evil = pickle.dumps({"data": Path("/etc/passwd"), "labels": []}, protocol=2)
    with pytest.raises(ValueError, match="refusing to unpickle"):
        registry.read_cifar_batch(evil, "evil")


def test_cifar10_missing_everywhere_explains(tmp_path):
    with pytest.raises(ValueError, match="cifar-10-python.tar.gz.*download=False"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)


# -- user files ---------------------------------------------------------------------------
def test_npy_ranks_2_3_4(tmp_path):
    rng = np.random.default_rng(0)
    p2 = tmp_path / "rows.npy"
    X = rng.normal(size=(50, 7)).astype(np.float64)
    np.save(p2, X)
    ds = load_dataset(str(p2), test_fraction=0.2)
    check_common(ds)
    assert ds.X_train.shape == (40, 7) and ds.X_test.shape == (10, 7) and ds.image_shape is None
    assert ds.y_train is None and ds.value_range == (float(ds.X_train.min()), float(ds.X_train.max()))
    p3 = tmp_path / "grey.npy"
    np.save(p3, rng.integers(0, 256, (20, 5, 6), dtype=np.uint8))
    ds = load_dataset(p3)
    assert ds.image_shape == (1, 5, 6) and ds.X_train.max() <= 1.0 and ds.X_train.shape == (16, 30)
    hwc = rng.integers(0, 256, (10, 8, 9, 3), dtype=np.uint8)
    np.save(tmp_path / "hwc.npy", hwc)
    ds = load_dataset(tmp_path / "hwc.npy", test_fraction=0.0)
    assert ds.image_shape == (3, 8, 9) and ds.X_test.shape == (0, 216)
    np.testing.assert_allclose(ds.images(ds.X_train) * 255, hwc.transpose(0, 3, 1, 2), atol=1e-3)
    chw = rng.random((10, 3, 8, 9)).astype(np.float32)
    np.save(tmp_path / "chw.npy", chw)
    assert load_dataset(tmp_path / "chw.npy").image_shape == (3, 8, 9)
    bad = chw.copy()
    bad[2, 1, 1, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match="NaN"):
        load_dataset(tmp_path / "nan.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="obj.npy"):
        load_dataset(tmp_path / "obj.npy")


def test_npz_both_layouts(tmp_path):
    rng = np.random.default_rng(0)
    xtr, xte = rng.random((12, 4)).astype(np.float32), rng.random((5, 4)).astype(np.float32)
    np.savez(tmp_path / "given.npz", x_train=xtr, x_test=xte, y_train=np.arange(12) % 3, y_test=np.arange(5) % 3)
    ds = load_dataset(tmp_path / "given.npz")
    np.testing.assert_array_equal(ds.X_train, xtr)
    np.testing.assert_array_equal(ds.X_test, xte)
    assert ds.y_test.tolist() == [0, 1, 2, 0, 1]
    y = np.array(["cat", "dog"] * 20)
    np.savez(tmp_path / "xy.npz", X=rng.integers(0, 256, (40, 4, 4), dtype=np.uint8), y=y)
    ds = load_dataset(tmp_path / "xy.npz", test_fraction=0.25)
    assert ds.X_train.shape == (30, 16) and ds.image_shape == (1, 4, 4) and ds.label_names == ["cat", "dog"]
    assert np.bincount(ds.y_test).tolist() == [5, 5]
    np.savez(tmp_path / "odd.npz", a=xtr, b=xte)
    with pytest.raises(ValueError, match="x_train"):
        load_dataset(tmp_path / "odd.npz")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="broken.npz"):
        load_dataset(tmp_path / "broken.npz")


def test_csv_header_label_column_and_bad_cell(tmp_path):
    lines = ["a,b,kind,c"] + [f"{i},{i * 0.5},{'xy'[i % 2]},{-i}" for i in range(20)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    ds = load_dataset(tmp_path / "t.csv", label_column="kind", test_fraction=0.2)
    assert ds.X_train.shape == (16, 3) and ds.label_names == ["x", "y"]
    X = np.concatenate([ds.X_train, ds.X_test])
    assert sorted(X[:, 0].tolist()) == list(range(20)) and np.all(X[:, 2] == -X[:, 0])
    by_index = load_dataset(tmp_path / "t.csv", label_column=2)
    np.testing.assert_array_equal(by_index.X_train, ds.X_train)
    (tmp_path / "n.csv").write_text("1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    ds = load_dataset(tmp_path / "n.csv", label_column=-1, test_fraction=0.5)
    assert ds.n_features == 2 and ds.label_names is None and ds.y_train.dtype == np.int64
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(ValueError, match=r"row 3, column 'b'.*'oops'"):
        load_dataset(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="label_column='nope'"):
        load_dataset(tmp_path / "t.csv", label_column="nope")


def test_image_folder_with_classes_and_mixed_sizes(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    pixels = {}
    for cls in ("cats", "dogs"):
        (root / cls).mkdir(parents=True)
        for i in range(5):
            arr = rng.integers(0, 256, (6, 4, 3), dtype=np.uint8)  # H=6, W=4, RGB
            Image.fromarray(arr).save(root / cls / f"{i}.png")
            pixels[(cls, i)] = arr
    ds = load_dataset(root, test_fraction=0.2)
    check_common(ds)
    assert ds.image_shape == (3, 6, 4) and ds.label_names == ["cats", "dogs"]
    assert ds.X_train.shape == (8, 72) and np.bincount(ds.y_test).tolist() == [1, 1]
    full = load_dataset(root, test_fraction=0.0)  # no split: files in sorted order, cats then dogs
    assert full.y_train.tolist() == [0] * 5 + [1] * 5
    np.testing.assert_allclose(full.images(full.X_train)[8] * 255, pixels[("dogs", 3)].transpose(2, 0, 1), atol=1e-3)
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (5, 5), dtype=np.uint8), mode="L").save(flat / f"{i}.png")
    ds = load_dataset(flat, test_fraction=0.25)
    assert ds.image_shape == (1, 5, 5) and ds.y_train is None
    Image.fromarray(rng.integers(0, 256, (7, 5), dtype=np.uint8)).save(flat / "9_odd.png")
    with pytest.raises(ValueError, match=r"9_odd.png is 5x7"):
        load_dataset(flat)
    (flat / "9_odd.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read image"):
        load_dataset(flat)


# -- data_home ----------------------------------------------------------------------------
def test_data_home_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("AEKIT_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_home(tmp_path / "arg") == tmp_path / "arg"
    assert data_home() == tmp_path / "env"
    monkeypatch.delenv("AEKIT_DATA")
    assert data_home() == tmp_path / "xdg" / "aekit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_home() == tmp_path / "home" / ".cache" / "aekit"
