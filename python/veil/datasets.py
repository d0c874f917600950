"""Datasets for training and evaluating veil models.

:func:`load_dataset` turns a short text spec into a :class:`Dataset` with float64 features
and int64 labels, split into train, optional validation, and test parts:

* ``digits`` -- scikit-learn's 8x8 handwritten digits (shipped with scikit-learn, so no
  download), features scaled to [0, 1].
* ``PATH.npz`` -- a NumPy archive holding ``X`` and ``y`` and optionally ``X_test`` and
  ``y_test``.
* ``PATH.csv`` -- a CSV file with a header row: numeric feature columns and one label
  column (``label_column``), whose values are class ids or class names.
* ``idx:IMAGES,LABELS`` -- one pair of MNIST-format IDX files.
* ``DIR`` -- a directory holding the four standard MNIST files (optionally gzipped), or
  CIFAR-10's binary batches (``data_batch_1.bin`` ... ``data_batch_5.bin`` and
  ``test_batch.bin``, as the "binary version" a user downloads unpacks them; never
  downloaded here).

Image sources (digits, IDX, CIFAR-10) record their ``image_shape`` (C, H, W), which a
convolutional model takes; features are always the flattened images, in that order.

Splits are stratified and depend only on ``seed``, so a run can be repeated exactly.
"""

from __future__ import annotations

import csv
import gzip
import os
import zipfile
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["Dataset", "load_dataset", "read_csv", "read_features", "read_idx"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled dataset split into train, optional validation, and test parts.

    Attributes:
        X_train: Training features, float64 of shape (n_train, n_features).
        y_train: Training labels, int64 of shape (n_train,), values in [0, n_classes).
        X_val: Validation features, or None when no validation split was requested.
        y_val: Validation labels, or None when no validation split was requested.
        X_test: Test features, float64 of shape (n_test, n_features).
        y_test: Test labels, int64 of shape (n_test,).
        n_features: Number of input features per sample.
        n_classes: Number of classes (one more than the largest label).
        name: Short human-readable name of the source.
        classes: The name of each class id when the labels were names (CSV), else None.
        feature_names: The feature columns' names (CSV), else None.
        image_shape: (channels, height, width) of each sample for an image source, else None.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: Optional[np.ndarray]
    y_val: Optional[np.ndarray]
    X_test: np.ndarray
    y_test: np.ndarray
    n_features: int
    n_classes: int
    name: str
    classes: Optional[Tuple[str, ...]] = None
    feature_names: Optional[Tuple[str, ...]] = None
    image_shape: Optional[Tuple[int, int, int]] = None

    def __repr__(self) -> str:
        # The default dataclass repr would print every array in full.
        n_val = 0 if self.X_val is None else len(self.X_val)
        return (
            f"Dataset(name={self.name!r}, n_train={len(self.X_train)}, n_val={n_val}, "
            f"n_test={len(self.X_test)}, n_features={self.n_features}, "
            f"n_classes={self.n_classes})"
        )


_SPEC_FORMS = (
    "'digits', a path to an .npz file with arrays X and y, a .csv file with a header row, "
    "'idx:IMAGES_PATH,LABELS_PATH', or a directory holding the MNIST IDX files or "
    "CIFAR-10's binary batches"
)


def load_dataset(
    spec: str,
    *,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.0,
    seed: int = 0,
    label_column: Optional[str] = None,
) -> Dataset:
    """Loads and splits a dataset.

    Args:
        spec: ``"digits"``, a path to an ``.npz`` file, ``"idx:IMAGES_PATH,LABELS_PATH"``, or
            a directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally with a
            ``.gz`` suffix).
        test_fraction: Fraction of all samples held out for testing, in (0, 1). Ignored when
            the source ships its own test set (an MNIST directory, or an ``.npz`` holding
            ``X_test`` and ``y_test``).
        validation_fraction: Fraction of the training pool (the samples that are not test
            samples) held out for validation, in [0, 1). Zero means no validation split.
        seed: Seed of the stratified splits; the same seed always gives the same split.
        label_column: The label column of a CSV file (default: a column named "label",
            "target", "class" or "y").

    Returns:
        The split dataset.

    Raises:
        ValueError: If the spec is unknown, a file is missing or malformed, the fractions are
            out of range, or the data is unusable (non-integer or negative labels, NaN or Inf
            features, mismatched lengths).
    """
    _check_fraction("test_fraction", test_fraction, allow_zero=False)
    _check_fraction("validation_fraction", validation_fraction, allow_zero=True)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"unknown dataset spec {spec!r}; expected {_SPEC_FORMS}")

    spec = spec.strip()
    if spec == "digits":
        X, y = _load_digits()
        data = _assemble("digits", X, y, None, None, test_fraction, validation_fraction, seed)
        return _with_image_shape(data, (1, 8, 8))
    if spec.startswith("idx:"):
        parts = spec[len("idx:"):].split(",")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise ValueError(
                f"dataset spec {spec!r}: expected 'idx:IMAGES_PATH,LABELS_PATH' "
                "(two paths separated by one comma)"
            )
        images_path, labels_path = (os.path.expanduser(p.strip()) for p in parts)
        X, y, shape = _load_idx_pair(images_path, labels_path)
        name = "idx:" + os.path.basename(images_path)
        data = _assemble(name, X, y, None, None, test_fraction, validation_fraction, seed)
        return _with_image_shape(data, shape)

    path = os.path.expanduser(spec)
    if os.path.isdir(path):
        cifar = _cifar_dir(path)
        if cifar is not None:
            X, y, X_test, y_test = _load_cifar10(cifar)
            shape: Optional[Tuple[int, int, int]] = _CIFAR_SHAPE
        else:
            X, y, X_test, y_test, shape = _load_mnist_dir(path)
        name = os.path.basename(os.path.normpath(path)) or path
        data = _assemble(name, X, y, X_test, y_test, test_fraction, validation_fraction, seed)
        return _with_image_shape(data, shape)
    if path.lower().endswith(".csv"):
        X, names, columns = read_csv(path, label_column, require_label=True)
        y, classes = _class_ids(names, f"{path}: column {columns[1]!r}")
        data = _assemble(os.path.splitext(os.path.basename(path))[0], X, y, None, None,
                         test_fraction, validation_fraction, seed)
        n_classes = max(data.n_classes, 0 if classes is None else len(classes))
        return Dataset(**{**data.__dict__, "n_classes": n_classes,
                          "classes": None if classes is None else tuple(classes),
                          "feature_names": tuple(columns[0])})
    if path.lower().endswith(".npz"):
        X, y, X_test, y_test = _load_npz(path)
        name = os.path.splitext(os.path.basename(path))[0]
        return _assemble(name, X, y, X_test, y_test, test_fraction, validation_fraction, seed)
    if os.path.exists(path):
        raise ValueError(
            f"{path}: unsupported dataset file (expected a .csv file, an .npz archive, an "
            "MNIST directory, or 'idx:IMAGES_PATH,LABELS_PATH')"
        )
    raise ValueError(f"unknown dataset spec {spec!r}; expected {_SPEC_FORMS}")


def _check_fraction(name: str, value: float, *, allow_zero: bool) -> None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    low_ok = v >= 0.0 if allow_zero else v > 0.0
    if not (np.isfinite(v) and low_ok and v < 1.0):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


# ---------------------------------------------------------------------------------------------
# Sources


def _load_digits() -> Tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ValueError(
            "dataset 'digits' needs scikit-learn (pip install scikit-learn)"
        ) from exc
    bunch = load_digits()
    # Pixel intensities of this dataset are integers in [0, 16].
    X = np.asarray(bunch.data, dtype=np.float64) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    return X, y


def _load_npz(
    path: str,
) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    with open(path, "rb") as handle:
        # Checked here because np.load would otherwise try other formats and report a
        # confusing pickle error for a file that is simply not a zip archive.
        if handle.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise ValueError(f"{path}: not an .npz archive (no zip signature)")
    try:
        # allow_pickle=False: a dataset file must never be able to run code on load.
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as exc:
        raise ValueError(f"{path}: cannot read arrays ({exc})") from exc
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable .npz archive, damaged or truncated "
                         f"({type(exc).__name__}: {exc})") from exc
    for key in ("X", "y"):
        if key not in arrays:
            raise ValueError(
                f"{path}: missing array {key!r} (found: {', '.join(sorted(arrays)) or 'none'})"
            )
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise ValueError(f"{path}: 'X_test' and 'y_test' must be given together")
    X = _features(arrays["X"], f"{path}: array 'X'")
    y = _labels(arrays["y"], f"{path}: array 'y'")
    _same_length(X, y, f"{path}: 'X' and 'y'")
    if "X_test" not in arrays:
        return X, y, None, None
    X_test = _features(arrays["X_test"], f"{path}: array 'X_test'")
    y_test = _labels(arrays["y_test"], f"{path}: array 'y_test'")
    _same_length(X_test, y_test, f"{path}: 'X_test' and 'y_test'")
    if X_test.shape[1] != X.shape[1]:
        raise ValueError(
            f"{path}: 'X' has {X.shape[1]} features per sample but 'X_test' has "
            f"{X_test.shape[1]}"
        )
    return X, y, X_test, y_test


_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _find_mnist_file(directory: str, stem: str) -> str:
    # Some mirrors spell the last separator as a dot (train-images.idx3-ubyte).
    dotted = stem.replace("-idx", ".idx")
    candidates = [stem, stem + ".gz", dotted, dotted + ".gz"]
    for candidate in candidates:
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    raise ValueError(
        f"{directory}: no such file {stem!r} (also looked for {stem + '.gz'!r}); an MNIST "
        f"directory must hold {', '.join(_MNIST_FILES.values())}"
    )


def _load_mnist_dir(
    directory: str,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Optional[Tuple[int, int, int]]]:
    paths = {key: _find_mnist_file(directory, stem) for key, stem in _MNIST_FILES.items()}
    X, y, shape = _load_idx_pair(paths["train_images"], paths["train_labels"])
    X_test, y_test, _ = _load_idx_pair(paths["test_images"], paths["test_labels"])
    if X_test.shape[1] != X.shape[1]:
        raise ValueError(
            f"{paths['test_images']}: images have {X_test.shape[1]} pixels but the training "
            f"images in {paths['train_images']} have {X.shape[1]}"
        )
    return X, y, X_test, y_test, shape


# ---------------------------------------------------------------------------------------------
# CSV: a header row, then one sample per row.

_LABEL_NAMES = ("label", "target", "class", "y")


def read_csv(
    path: str, label_column: Optional[str] = None, *, require_label: bool = False,
) -> Tuple[np.ndarray, Optional[List[str]], Tuple[List[str], Optional[str]]]:
    """Reads a CSV file with a header row into features and (optionally) label values.

    Args:
        path: The file.
        label_column: The label column's name. None: a column named "label", "target",
            "class" or "y" if there is one.
        require_label: Raise when there is no label column (training needs one).

    Returns:
        ``(X, labels, (feature_names, label_name))``: float64 features of every other
        column, the label column's raw strings (None when absent), and the names.

    Raises:
        ValueError: A missing file, no header, a ragged row, a non-numeric feature.
    """
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: not a readable CSV file ({exc})") from exc
    if len(rows) < 2:
        raise ValueError(f"{path}: a CSV dataset needs a header row and at least one sample")
    header = [name.strip() for name in rows[0]]
    if label_column is None:
        found = [name for name in header if name.lower() in _LABEL_NAMES]
        label_name = found[0] if found else None
    else:
        label_name = label_column if label_column in header else None
    if label_name is None and require_label:
        wanted = (f"no column {label_column!r}" if label_column is not None else
                  f"no column named {', '.join(_LABEL_NAMES)}")
        raise ValueError(f"{path}: {wanted}; name the label column with --label-column "
                         f"(columns: {', '.join(header)})")
    label_at = header.index(label_name) if label_name is not None else -1
    feature_names = [name for i, name in enumerate(header) if i != label_at]
    X = np.empty((len(rows) - 1, len(feature_names)), dtype=np.float64)
    labels: Optional[List[str]] = [] if label_name is not None else None
    for r, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise ValueError(f"{path}: line {r + 2} has {len(row)} fields but the header has "
                             f"{len(header)}")
        j = 0
        for i, cell in enumerate(row):
            if i == label_at:
                labels.append(cell.strip())
                continue
            try:
                X[r, j] = float(cell)
            except ValueError:
                raise ValueError(f"{path}: line {r + 2}, column {header[i]!r}: {cell.strip()!r} "
                                 "is not a number (features must be numeric)") from None
            j += 1
    return _features(X, path), labels, (feature_names, label_name)


def _class_ids(values: List[str], what: str) -> Tuple[np.ndarray, Optional[List[str]]]:
    """Label strings as class ids: integers as they are, names numbered in sorted order."""
    try:
        ids = [int(v) for v in values]
        return _labels(np.asarray(ids, dtype=np.int64), what), None
    except ValueError:
        pass
    classes = sorted(set(values))
    number = {name: i for i, name in enumerate(classes)}
    return np.asarray([number[v] for v in values], dtype=np.int64), classes


def read_features(
    spec: str, *, label_column: Optional[str] = None, classes: Optional[Sequence[str]] = None,
) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[List[str]]]:
    """Reads samples to predict on, labelled or not.

    Args:
        spec: A ``.csv`` file (header row; a label column is optional) or an ``.npz``
            archive holding ``X`` and optionally ``y``.
        label_column: The CSV's label column, if it has one (default: as read_csv).
        classes: The model's class names, to turn label names into class ids.

    Returns:
        ``(X, y or None, feature names or None)``.
    """
    path = os.path.expanduser(spec)
    if path.lower().endswith(".csv"):
        X, values, (names, label_name) = read_csv(path, label_column)
        if values is None:
            return X, None, names
        what = f"{path}: column {label_name!r}"
        if classes is not None and not all(v.lstrip("-").isdigit() for v in values):
            number = {name: i for i, name in enumerate(classes)}
            unknown = sorted(set(values) - set(number))
            if unknown:
                raise ValueError(f"{what}: labels {', '.join(map(repr, unknown[:5]))} are not "
                                 f"classes of the model ({', '.join(classes)})")
            return X, np.asarray([number[v] for v in values], dtype=np.int64), names
        y, named = _class_ids(values, what)
        if named is not None:
            raise ValueError(f"{what}: holds class names but the model knows none")
        return X, y, names
    if path.lower().endswith(".npz"):
        if not os.path.isfile(path):
            raise ValueError(f"{path}: no such file")
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except (OSError, EOFError, ValueError, zlib.error, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path}: not a readable .npz archive, damaged or truncated "
                             f"({type(exc).__name__}: {exc})") from exc
        if "X" not in arrays:
            raise ValueError(f"{path}: missing array 'X' (found: "
                             f"{', '.join(sorted(arrays)) or 'none'})")
        X = _features(arrays["X"], f"{path}: array 'X'")
        if "y" not in arrays:
            return X, None, None
        y = _labels(arrays["y"], f"{path}: array 'y'")
        _same_length(X, y, f"{path}: 'X' and 'y'")
        return X, y, None
    raise ValueError(f"{spec}: data to predict on is a .csv file or an .npz archive")


# ---------------------------------------------------------------------------------------------
# IDX format: two zero bytes, a type code, the number of dimensions, one big-endian uint32
# per dimension, then the elements in big-endian row-major order.

_IDX_TYPES: Dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file (the MNIST format), gzipped or not.

    Args:
        path: Path to the file. Gzip compression is recognised from the content, so a
            ``.gz`` suffix is accepted but not required.

    Returns:
        The array, in native byte order, with the shape given by the header.

    Raises:
        ValueError: If the file is missing, not gzip-readable, has a bad magic number or an
            unknown element type, or holds more or fewer bytes than its header declares.
    """
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: corrupt gzip data ({exc})") from exc
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()} (expected 0x0000TTNN with type "
            f"TT in {{{', '.join(f'{code:02x}' for code in _IDX_TYPES)}}})"
        )
    dtype = _IDX_TYPES[raw[2]]
    ndim = raw[3]
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares zero dimensions")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(
            f"{path}: truncated IDX header ({len(raw)} bytes, need {header_size} for "
            f"{ndim} dimensions)"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_size
    if actual != expected:
        kind = "truncated" if actual < expected else "trailing bytes"
        raise ValueError(
            f"{path}: size mismatch ({kind}): header declares shape {shape} of "
            f"{dtype.itemsize}-byte elements ({expected} bytes) but {actual} bytes follow it"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _load_idx_pair(images_path: str, labels_path: str):
    """(X, y, image shape): (1, H, W) for (count, H, W) images, else None."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8:
        raise ValueError(
            f"{images_path}: images must be unsigned bytes (IDX type 0x08) to be scaled by "
            f"1/255, got {images.dtype}"
        )
    if images.ndim < 2:
        raise ValueError(
            f"{images_path}: images need at least 2 dimensions (count, pixels...), "
            f"got shape {images.shape}"
        )
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: labels must be 1-dimensional, got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(
            f"{labels_path}: labels not integers (IDX element type {labels.dtype})"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels"
        )
    X = _features(images.reshape(len(images), -1) / 255.0, images_path)
    y = _labels(labels, labels_path)
    shape = (1,) + tuple(int(v) for v in images.shape[1:]) if images.ndim == 3 else None
    return X, y, shape


_CIFAR_SHAPE = (3, 32, 32)
_CIFAR_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_CIFAR_TEST = "test_batch.bin"


def _cifar_dir(path: str) -> Optional[str]:
    """The directory holding CIFAR-10's binary batches: path or its
    cifar-10-batches-bin subdirectory (the archive's layout); None if neither does."""
    for directory in (path, os.path.join(path, "cifar-10-batches-bin")):
        if os.path.isfile(os.path.join(directory, _CIFAR_TEST)) or os.path.isfile(
                os.path.join(directory, _CIFAR_TRAIN[0])):
            return directory
    return None


def read_cifar10_batch(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch: records of a label byte and 3072 pixel bytes (the red,
    green and blue 32x32 planes, row-major). Returns (pixels as (n, 3·32·32) uint8 in
    (C, H, W) order, labels)."""
    record = 1 + int(np.prod(_CIFAR_SHAPE))
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from exc
    if raw.size == 0 or raw.size % record:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {record}-byte "
                         "CIFAR-10 records (a label byte and 3072 pixels)")
    raw = raw.reshape(-1, record)
    labels = raw[:, 0]
    if labels.max() > 9:
        raise ValueError(f"{path}: label {int(labels.max())} is outside CIFAR-10's 0-9")
    return raw[:, 1:], labels


def _load_cifar10(directory: str):
    missing = [name for name in _CIFAR_TRAIN + (_CIFAR_TEST,)
               if not os.path.isfile(os.path.join(directory, name))]
    if missing:
        raise ValueError(f"{directory}: a CIFAR-10 directory must hold "
                         f"{', '.join(_CIFAR_TRAIN + (_CIFAR_TEST,))}; missing "
                         f"{', '.join(missing)}")
    parts = [read_cifar10_batch(os.path.join(directory, name)) for name in _CIFAR_TRAIN]
    X = np.concatenate([p[0] for p in parts]) / 255.0
    y = np.concatenate([p[1] for p in parts]).astype(np.int64)
    X_test, y_test = read_cifar10_batch(os.path.join(directory, _CIFAR_TEST))
    return X, y, X_test / 255.0, y_test.astype(np.int64)


def _with_image_shape(data: Dataset, shape: Optional[Tuple[int, int, int]]) -> Dataset:
    return Dataset(**{**data.__dict__, "image_shape": shape})


# ---------------------------------------------------------------------------------------------
# Validation and splitting


def _features(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{what}: features must be numeric, got dtype {array.dtype}")
    if array.ndim < 2:
        raise ValueError(
            f"{what}: features need shape (n_samples, n_features), got shape {array.shape}"
        )
    X = array.reshape(len(array), -1).astype(np.float64, copy=False)
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{what}: empty feature array of shape {array.shape}")
    if not np.all(np.isfinite(X)):
        bad = int(np.count_nonzero(~np.isfinite(X)))
        raise ValueError(f"{what}: features hold {bad} NaN or Inf values")
    return X


def _labels(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 1:
        raise ValueError(f"{what}: labels must be 1-dimensional, got shape {array.shape}")
    if array.dtype.kind in "iu":
        y = array.astype(np.int64)
    elif array.dtype.kind == "f":
        # Labels stored as floats are accepted only when every value is a whole number.
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise ValueError(f"{what}: labels not integers")
        y = array.astype(np.int64)
    else:
        raise ValueError(f"{what}: labels not integers (dtype {array.dtype})")
    if len(y) and y.min() < 0:
        raise ValueError(f"{what}: labels must be non-negative, found {int(y.min())}")
    return y


def _same_length(X: np.ndarray, y: np.ndarray, what: str) -> None:
    if len(X) != len(y):
        raise ValueError(f"{what} differ in length: {len(X)} samples but {len(y)} labels")


def _stratified_take(
    y: np.ndarray, n_take: int, rng: np.random.Generator
) -> Tuple[np.ndarray, np.ndarray]:
    """Splits indices of ``y`` into (kept, taken) with ``n_take`` taken, per-class proportional.

    Class quotas use the largest-remainder rule so that the total is exact and every class
    gets its proportional share rounded up or down.
    """
    n = len(y)
    classes, counts = np.unique(y, return_counts=True)
    quotas = counts * (n_take / n)
    take = np.floor(quotas).astype(np.int64)
    remainder = n_take - int(take.sum())
    if remainder > 0:
        # Stable sort keeps the tie-break deterministic (lower class first).
        order = np.argsort(-(quotas - take), kind="stable")
        take[order[:remainder]] += 1
    perm = rng.permutation(n)
    shuffled_labels = y[perm]
    taken: List[np.ndarray] = []
    for cls, k in zip(classes, take):
        taken.append(perm[shuffled_labels == cls][:k])
    taken_idx = np.sort(np.concatenate(taken)) if taken else np.empty(0, dtype=np.int64)
    mask = np.ones(n, dtype=bool)
    mask[taken_idx] = False
    return np.flatnonzero(mask), taken_idx


def _split_count(n: int, fraction: float, what: str) -> int:
    count = int(np.floor(n * fraction + 0.5))
    if fraction > 0 and (count < 1 or count >= n):
        raise ValueError(
            f"cannot hold out {what} fraction {fraction} of {n} samples: every split needs at "
            "least one sample"
        )
    return count


def _assemble(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    X_test: Optional[np.ndarray],
    y_test: Optional[np.ndarray],
    test_fraction: float,
    validation_fraction: float,
    seed: int,
) -> Dataset:
    rng = np.random.default_rng(seed)
    # The test split consumes the generator first, so changing validation_fraction never
    # changes which samples are test samples.
    if X_test is None or y_test is None:
        n_test = _split_count(len(y), test_fraction, "test")
        keep, test = _stratified_take(y, n_test, rng)
        X_test, y_test = X[test], y[test]
        X, y = X[keep], y[keep]
    X_val: Optional[np.ndarray] = None
    y_val: Optional[np.ndarray] = None
    if validation_fraction > 0:
        n_val = _split_count(len(y), validation_fraction, "validation")
        keep, val = _stratified_take(y, n_val, rng)
        X_val, y_val = X[val], y[val]
        X, y = X[keep], y[keep]
    n_classes = int(max(y.max(), y_test.max(), -1 if y_val is None else y_val.max())) + 1
    return Dataset(
        X_train=np.ascontiguousarray(X, dtype=np.float64),
        y_train=np.ascontiguousarray(y, dtype=np.int64),
        X_val=None if X_val is None else np.ascontiguousarray(X_val, dtype=np.float64),
        y_val=None if y_val is None else np.ascontiguousarray(y_val, dtype=np.int64),
        X_test=np.ascontiguousarray(X_test, dtype=np.float64),
        y_test=np.ascontiguousarray(y_test, dtype=np.int64),
        n_features=int(X.shape[1]),
        n_classes=n_classes,
        name=name,
    )
