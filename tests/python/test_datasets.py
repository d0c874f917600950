"""Tests for veil.datasets: digits, .npz archives, IDX files, and their error messages."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from veil.datasets import Dataset, load_dataset, read_idx

# IDX element type codes (the third byte of the magic number).
UBYTE, INT32, FLOAT32 = 0x08, 0x0C, 0x0D
_BIG_ENDIAN = {UBYTE: ">u1", INT32: ">i4", FLOAT32: ">f4"}


def write_idx(path, array, type_code=UBYTE, compress=False):
    """Writes ``array`` as an IDX file: magic 0x0000TTNN, big-endian uint32 dims, data."""
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.astype(_BIG_ENDIAN[type_code]).tobytes()
    if compress:
        payload = gzip.compress(payload)
    with open(path, "wb") as handle:
        handle.write(payload)
    return str(path)


def indexed_data(n=100, n_features=3, n_classes=4):
    """Features whose first column is the sample index, so splits can be traced back."""
    rng = np.random.default_rng(5)
    X = np.column_stack([np.arange(n, dtype=np.float64), rng.normal(size=(n, n_features - 1))])
    y = np.arange(n) % n_classes
    return X, y


# --- digits ------------------------------------------------------------------------------------


def test_digits_shapes_ranges_and_classes():
    data = load_dataset("digits")
    assert isinstance(data, Dataset)
    assert data.name == "digits"
    assert data.n_features == 64 and data.n_classes == 10
    assert len(data.y_train) + len(data.y_test) == 1797
    assert len(data.y_test) == round(0.2 * 1797)
    assert data.X_val is None and data.y_val is None
    for X, y in ((data.X_train, data.y_train), (data.X_test, data.y_test)):
        assert X.dtype == np.float64 and y.dtype == np.int64
        assert X.shape == (len(y), 64)
        assert X.min() >= 0.0 and X.max() <= 1.0
        assert set(np.unique(y)) == set(range(10))
    assert data.X_train.max() == 1.0  # scaled by 1/16, so the brightest pixel maps to 1


def test_digits_split_is_stratified():
    data = load_dataset("digits", test_fraction=0.25)
    counts_all = np.bincount(np.concatenate([data.y_train, data.y_test]), minlength=10)
    counts_test = np.bincount(data.y_test, minlength=10)
    assert np.all(np.abs(counts_test - 0.25 * counts_all) <= 1)


def test_digits_split_is_deterministic_per_seed():
    a = load_dataset("digits", seed=3)
    b = load_dataset("digits", seed=3)
    c = load_dataset("digits", seed=4)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.X_test, c.X_test)


def test_digits_validation_split():
    data = load_dataset("digits", validation_fraction=0.1, seed=1)
    pool = 1797 - round(0.2 * 1797)
    assert len(data.y_val) == round(0.1 * pool)
    assert len(data.y_train) + len(data.y_val) == pool
    assert data.X_val.shape == (len(data.y_val), 64)
    assert set(np.unique(data.y_val)) == set(range(10))


# --- splitting, through .npz ---------------------------------------------------------------


def test_npz_split_is_a_partition(tmp_path):
    X, y = indexed_data()
    path = tmp_path / "toy.npz"
    np.savez(path, X=X, y=y)
    data = load_dataset(str(path), test_fraction=0.2, validation_fraction=0.25, seed=7)
    assert data.name == "toy"
    assert data.n_features == 3 and data.n_classes == 4
    parts = [data.X_train, data.X_val, data.X_test]
    ids = np.concatenate([p[:, 0] for p in parts]).astype(int)
    assert sorted(ids) == list(range(100))
    assert (len(data.y_test), len(data.y_val), len(data.y_train)) == (20, 20, 60)
    # Labels travel with their rows.
    for X_part, y_part in ((data.X_train, data.y_train), (data.X_val, data.y_val),
                           (data.X_test, data.y_test)):
        np.testing.assert_array_equal(y_part, X_part[:, 0].astype(int) % 4)


def test_validation_fraction_does_not_move_the_test_set(tmp_path):
    X, y = indexed_data()
    path = tmp_path / "toy.npz"
    np.savez(path, X=X, y=y)
    without = load_dataset(str(path), seed=2)
    with_val = load_dataset(str(path), validation_fraction=0.3, seed=2)
    np.testing.assert_array_equal(without.X_test, with_val.X_test)


def test_npz_with_its_own_test_set(tmp_path):
    X, y = indexed_data()
    X_test = np.full((7, 3), 0.5)
    y_test = np.array([0, 1, 2, 3, 0, 1, 2])
    path = tmp_path / "split.npz"
    np.savez(path, X=X, y=y, X_test=X_test, y_test=y_test)
    data = load_dataset(str(path))
    np.testing.assert_array_equal(data.X_test, X_test)
    np.testing.assert_array_equal(data.y_test, y_test)
    assert len(data.y_train) == 100  # nothing of X is held out when a test set is given


def test_npz_images_are_flattened_and_integral_float_labels_accepted(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(30, 4, 5)).astype(np.uint8)
    labels = (np.arange(30) % 3).astype(np.float32)
    path = tmp_path / "images.npz"
    np.savez(path, X=images, y=labels)
    data = load_dataset(str(path))
    assert data.n_features == 20 and data.n_classes == 3
    assert data.y_train.dtype == np.int64 and data.X_train.dtype == np.float64


@pytest.mark.parametrize(
    "arrays, fragment",
    [
        ({"y": np.zeros(3, int)}, "missing array 'X'"),
        ({"X": np.zeros((3, 2)), "y": np.array([0.0, 0.5, 1.0])}, "labels not integers"),
        ({"X": np.zeros((3, 2)), "y": np.array(["a", "b", "c"])}, "labels not integers"),
        ({"X": np.zeros((3, 2)), "y": np.array([0, -1, 1])}, "non-negative"),
        ({"X": np.array([[0.0, np.nan], [1, 2], [3, 4]]), "y": np.zeros(3, int)}, "NaN or Inf"),
        ({"X": np.array([[0.0, np.inf], [1, 2], [3, 4]]), "y": np.zeros(3, int)}, "NaN or Inf"),
        ({"X": np.zeros((4, 2)), "y": np.zeros(3, int)}, "differ in length"),
        ({"X": np.zeros(4), "y": np.zeros(4, int)}, "n_features"),
        ({"X": np.zeros((4, 2)), "y": np.zeros(4, int), "X_test": np.zeros((2, 2))},
         "must be given together"),
        ({"X": np.zeros((4, 2)), "y": np.zeros(4, int), "X_test": np.zeros((2, 3)),
          "y_test": np.zeros(2, int)}, "features per sample"),
    ],
)
def test_npz_errors_name_the_file(tmp_path, arrays, fragment):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError) as info:
        load_dataset(str(path))
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_npz_missing_and_not_a_zip(tmp_path):
    missing = tmp_path / "missing.npz"
    with pytest.raises(ValueError, match="no such file") as info:
        load_dataset(str(missing))
    assert str(missing) in str(info.value)
    fake = tmp_path / "fake.npz"
    fake.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match="not an .npz archive"):
        load_dataset(str(fake))


def test_unknown_spec_and_bad_fractions(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset spec"):
        load_dataset("imagenet")
    other = tmp_path / "data.txt"
    other.write_text("1,2,3\n")
    with pytest.raises(ValueError, match="unsupported dataset file"):
        load_dataset(str(other))
    headless = tmp_path / "data.csv"
    headless.write_text("1,2,3\n")
    with pytest.raises(ValueError, match="needs a header row"):
        load_dataset(str(headless))
    for kwargs in ({"test_fraction": 0.0}, {"test_fraction": 1.0},
                   {"validation_fraction": -0.1}, {"validation_fraction": 1.0},
                   {"seed": -1}):
        with pytest.raises(ValueError):
            load_dataset("digits", **kwargs)


# --- IDX -----------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_idx_pair_round_trip(tmp_path, compress):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(40, 3, 4)).astype(np.uint8)
    labels = (np.arange(40) % 5).astype(np.uint8)
    suffix = ".gz" if compress else ""
    img = write_idx(tmp_path / f"img-idx3-ubyte{suffix}", images, compress=compress)
    lbl = write_idx(tmp_path / f"lbl-idx1-ubyte{suffix}", labels, compress=compress)
    data = load_dataset(f"idx:{img},{lbl}", test_fraction=0.25, seed=0)
    assert data.n_features == 12 and data.n_classes == 5
    assert len(data.y_train) == 30 and len(data.y_test) == 10
    # Every split row is one of the original images scaled by 1/255, with its own label.
    flat = images.reshape(40, -1).astype(np.float64) / 255.0
    for X_part, y_part in ((data.X_train, data.y_train), (data.X_test, data.y_test)):
        for row, label in zip(X_part, y_part):
            matches = np.flatnonzero(np.all(flat == row, axis=1))
            assert len(matches) >= 1 and label in labels[matches]


def test_read_idx_types_and_gzip(tmp_path):
    ints = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    floats = np.linspace(-1, 1, 5).astype(np.float32)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "i", ints, INT32)), ints)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "f", floats, FLOAT32)), floats)
    gz = write_idx(tmp_path / "i.gz", ints, INT32, compress=True)
    np.testing.assert_array_equal(read_idx(gz), ints)


def make_mnist_dir(directory, compress_train=True):
    rng = np.random.default_rng(2)
    os.makedirs(directory, exist_ok=True)
    train_x = rng.integers(0, 256, size=(50, 28, 28)).astype(np.uint8)
    train_y = (np.arange(50) % 10).astype(np.uint8)
    test_x = rng.integers(0, 256, size=(20, 28, 28)).astype(np.uint8)
    test_y = (np.arange(20) % 10).astype(np.uint8)
    gz = ".gz" if compress_train else ""
    write_idx(os.path.join(directory, "train-images-idx3-ubyte" + gz), train_x,
              compress=compress_train)
    write_idx(os.path.join(directory, "train-labels-idx1-ubyte" + gz), train_y,
              compress=compress_train)
    write_idx(os.path.join(directory, "t10k-images-idx3-ubyte"), test_x)
    write_idx(os.path.join(directory, "t10k-labels-idx1-ubyte"), test_y)
    return test_x, test_y


def test_mnist_directory_uses_the_t10k_files_as_test_set(tmp_path):
    test_x, test_y = make_mnist_dir(tmp_path / "mnist")
    data = load_dataset(str(tmp_path / "mnist"), validation_fraction=0.2)
    assert data.name == "mnist"
    assert data.n_features == 784 and data.n_classes == 10
    np.testing.assert_array_equal(data.X_test, test_x.reshape(20, -1) / 255.0)
    np.testing.assert_array_equal(data.y_test, test_y)
    assert (len(data.y_train), len(data.y_val)) == (40, 10)


def test_mnist_directory_missing_file(tmp_path):
    make_mnist_dir(tmp_path / "mnist")
    os.remove(tmp_path / "mnist" / "t10k-labels-idx1-ubyte")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte"):
        load_dataset(str(tmp_path / "mnist"))


def _pair(tmp_path, images, labels, image_type=UBYTE, label_type=UBYTE):
    img = write_idx(tmp_path / "images", images, image_type)
    lbl = write_idx(tmp_path / "labels", labels, label_type)
    return img, lbl


def test_idx_bad_magic(tmp_path):
    img, lbl = _pair(tmp_path, np.zeros((4, 2, 2), np.uint8), np.zeros(4, np.uint8))
    raw = bytearray(Path(img).read_bytes())
    raw[0] = 0x01
    Path(img).write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="bad IDX magic") as info:
        load_dataset(f"idx:{img},{lbl}")
    assert img in str(info.value)


def test_idx_unknown_type_code(tmp_path):
    path = tmp_path / "odd"
    path.write_bytes(bytes([0, 0, 0x42, 1]) + np.asarray([2], ">u4").tobytes() + b"ab")
    with pytest.raises(ValueError, match="bad IDX magic"):
        read_idx(str(path))


@pytest.mark.parametrize("cut", [1, 20])
def test_idx_truncated(tmp_path, cut):
    img, lbl = _pair(tmp_path, np.zeros((4, 2, 2), np.uint8), np.zeros(4, np.uint8))
    raw = Path(img).read_bytes()
    Path(img).write_bytes(raw[:-cut])
    with pytest.raises(ValueError, match="truncated") as info:
        load_dataset(f"idx:{img},{lbl}")
    assert img in str(info.value)


def test_idx_trailing_bytes(tmp_path):
    img, lbl = _pair(tmp_path, np.zeros((4, 2, 2), np.uint8), np.zeros(4, np.uint8))
    with open(lbl, "ab") as handle:
        handle.write(b"\x00")
    with pytest.raises(ValueError, match="size mismatch") as info:
        load_dataset(f"idx:{img},{lbl}")
    assert lbl in str(info.value)


def test_idx_mismatched_counts(tmp_path):
    img, lbl = _pair(tmp_path, np.zeros((5, 2, 2), np.uint8), np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="5 images") as info:
        load_dataset(f"idx:{img},{lbl}")
    assert img in str(info.value) and lbl in str(info.value)


def test_idx_float_labels_are_not_integers(tmp_path):
    img, lbl = _pair(tmp_path, np.zeros((4, 2, 2), np.uint8), np.zeros(4, np.float32),
                     label_type=FLOAT32)
    with pytest.raises(ValueError, match="labels not integers") as info:
        load_dataset(f"idx:{img},{lbl}")
    assert lbl in str(info.value)


def test_idx_missing_file_and_bad_spec(tmp_path):
    img, _ = _pair(tmp_path, np.zeros((4, 2, 2), np.uint8), np.zeros(4, np.uint8))
    missing = str(tmp_path / "nope")
    with pytest.raises(ValueError, match="no such file") as info:
        load_dataset(f"idx:{img},{missing}")
    assert missing in str(info.value)
    with pytest.raises(ValueError, match="IMAGES_PATH,LABELS_PATH"):
        load_dataset(f"idx:{img}")


def test_idx_corrupt_gzip(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02ab")[:-6])
    with pytest.raises(ValueError) as info:
        read_idx(str(path))
    assert str(path) in str(info.value)
