"""Command-line interface: ``veil`` and ``python -m veil``.

Each subcommand is one :class:`Subcommand` entry in :data:`SUBCOMMANDS`: a help line, a
function that adds its arguments to an :class:`argparse.ArgumentParser`, and a function that
runs it and returns the exit code. Adding a subcommand means adding one entry.

Exit codes: 0 success, 1 enclave error, 2 usage or configuration error, 3 verification
failure, 130 interrupted.

Heavy modules (NumPy, the native extension's trainer, scikit-learn, matplotlib) are imported
inside the functions that need them, so ``veil --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

__all__ = ["EXIT_OK", "EXIT_ENCLAVE", "EXIT_USAGE", "EXIT_VERIFICATION", "SUBCOMMANDS",
           "Subcommand", "build_parser", "main"]

EXIT_OK = 0
EXIT_ENCLAVE = 1
EXIT_USAGE = 2
EXIT_VERIFICATION = 3
_EXIT_INTERRUPTED = 130


class Subcommand(NamedTuple):
    """One ``veil`` subcommand.

    Attributes:
        help: One-line summary shown by ``veil --help``.
        add_arguments: Adds the subcommand's options to its parser.
        run: Runs the subcommand with the parsed arguments and returns the exit code.
    """

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# ---------------------------------------------------------------------------------------------
# veil info


def _info_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # `veil info` takes no options.


def _run_info(args: argparse.Namespace) -> int:
    del args
    import veil
    from veil import bench
    from veil._enclave import default_enclave

    info = veil.enclave_info()
    features = list(info.get("features", []))
    print(f"veil {veil.__version__}")
    print(f"enclave backend: {veil.enclave_backend()}")
    print(f"enclave version: {info.get('version', 'unknown')}")
    print(f"enclave image: {default_enclave().image_path}")
    print(f"features: {', '.join(features) if features else 'none'}")
    print("debug enclave: " + ("YES (development only: on SGX the host can read its memory)"
                               if info.get("debug") else "no (release)"))
    # `veil bench` needs the bench image for its baseline (b); say whether it is there.
    bench_image = bench.bench_image_path()
    print(f"bench image: {bench_image or 'not built (veil bench needs VEIL_BUILD_BENCHMARKS=ON)'}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# veil train

_ACTIVATION_CLASSES = {
    "identity": "Identity",
    "relu": "ReLU",
    "sigmoid": "Sigmoid",
    "arctan": "Arctan",
    "softplus": "Softplus",
}
_LOSS_NAMES = {"ce": "cross_entropy", "mse": "mse"}


def _layer_widths(text: str) -> List[int]:
    parts = text.split("-")
    try:
        widths = [int(part) for part in parts]
    except ValueError:
        widths = []
    if not widths or any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(
            f"invalid layer widths {text!r}: expected positive widths joined by '-', e.g. "
            "128-128 (hidden layers only) or 64-128-10 (inputs to classes)"
        )
    return widths


def _epoch_list(text: str) -> Tuple[int, ...]:
    if not text.strip():
        return ()
    try:
        epochs = tuple(int(part) for part in text.split(","))
    except ValueError:
        epochs = (-1,)
    if any(e < 0 for e in epochs):
        raise argparse.ArgumentTypeError(
            f"invalid epoch list {text!r}: expected non-negative integers separated by commas"
        )
    if len(set(epochs)) != len(epochs):
        raise argparse.ArgumentTypeError(f"invalid epoch list {text!r}: an epoch is repeated")
    return tuple(sorted(epochs))


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (0.0 <= value < 1.0):
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset", default="digits",
        help="'digits', a .csv file with a header row (numeric features and a label column), "
             "an .npz file (arrays X, y and optionally X_test, y_test), 'idx:IMAGES,LABELS', "
             "or a directory with the four MNIST IDX files (default: %(default)s)")
    parser.add_argument(
        "--model", choices=("mlp", "cnn"), default="mlp",
        help="mlp: dense layers (--layers); cnn: for image datasets (digits, IDX, CIFAR-10), "
             "conv 16 3x3 pad 1, activation, max pool 2, conv 32 3x3 pad 1, activation, max "
             "pool 2, flatten, dense to the classes (default: %(default)s)")
    parser.add_argument(
        "--label-column", metavar="NAME", default=None,
        help="the label column of a CSV dataset (default: one named label, target, class or y)")
    parser.add_argument(
        "--layers", type=_layer_widths, default=_layer_widths("128-128"),
        metavar="H-...-H",
        help="widths of the hidden layers, the input and output widths taken from the data; "
             "or every width from input features to classes, e.g. 64-128-10 (default: 128-128)")
    parser.add_argument(
        "--standardize", action="store_true",
        help="scale each feature to mean 0 and standard deviation 1, fitted on the training "
             "split and stored in the model file so that `veil predict` applies it too")
    parser.add_argument(
        "--activation", choices=sorted(_ACTIVATION_CLASSES), default="relu",
        help="activation of the hidden layers (default: relu)")
    parser.add_argument(
        "--output-activation", choices=sorted(_ACTIVATION_CLASSES), default=None,
        help="activation of the output layer (default: identity for ce, where the softmax is "
             "fused into the loss; sigmoid for mse, the seed paper's setting)")
    parser.add_argument(
        "--loss", choices=sorted(_LOSS_NAMES), default="ce",
        help="ce: softmax cross-entropy; mse: mean squared error (default: ce)")
    parser.add_argument("--epochs", type=_int_at_least(1), default=30,
                        help="passes over the training data (default: %(default)s)")
    parser.add_argument("--batch-size", type=_int_at_least(1), default=64,
                        help="samples per SGD step (default: %(default)s)")
    parser.add_argument("--lr-exp", type=_int_at_least(0), default=2, metavar="K",
                        help="learning rate 2^-K (default: %(default)s)")
    parser.add_argument(
        "--halve-at", type=_epoch_list, default=_epoch_list("20"), metavar="E1,E2,...",
        help="zero-based epochs at whose start the learning rate halves; '' for none "
             "(default: 20)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where the untrusted matrix products run (default: %(default)s)")
    parser.add_argument("--threads", type=_int_at_least(1), default=None,
                        help="threads the enclave's passes run on; results are the same for any "
                             "count (default: 1)")
    parser.add_argument("--workers", type=_int_at_least(1), default=1,
                        help="train data-parallel on this many Ray workers, each with its own "
                             "enclave and device; the weights are bit-identical to one worker's "
                             "(needs `pip install 'veil[distributed]'`; RAY_ADDRESS points at a "
                             "cluster; default: %(default)s, without Ray)")
    parser.add_argument("--run-key-file", metavar="FILE", default=None,
                        help="with --workers: the run key (as --sealing-key-file) every worker's "
                             "enclave derives the run's secrets from; resuming such a run needs "
                             "it (default: a fresh random key)")
    parser.add_argument("--seed", type=_int_at_least(0), default=0,
                        help="seed of the data split, initial weights and batch order "
                             "(default: %(default)s)")
    parser.add_argument("--test-fraction", type=_fraction, default=0.2,
                        help="fraction held out for testing when the dataset has no test set "
                             "(default: %(default)s)")
    parser.add_argument("--val-fraction", type=_fraction, default=0.0,
                        help="fraction of the training pool held out for validation "
                             "(default: %(default)s)")
    parser.add_argument(
        "--compare-float", action="store_true",
        help="also train a float64 NumPy reference from the same initial weights, batches and "
             "schedule, and report its test accuracy")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="output directory for model.npz (the trained model, for `veil "
                             "predict --model`), history.json and curves.png "
                             "(default: runs/train-<timestamp>)")
    parser.add_argument(
        "--resume", metavar="DIR", default=None,
        help="resume the run whose --out was DIR from its last checkpoint (DIR/checkpoint); "
             "--epochs is the total to reach")
    key = parser.add_mutually_exclusive_group()
    key.add_argument(
        "--sealing-key-file", metavar="FILE", default=None,
        help="key file (64 hex digits, as `openssl rand -hex 32 > FILE` writes, or 32 raw "
             "bytes) to seal a training checkpoint into OUT/checkpoint after every epoch")
    key.add_argument(
        "--insecure-test-key", action="store_true",
        help="seal checkpoints with veil.INSECURE_TEST_SEALING_KEY (anyone can open them; "
             "for tests and demos)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the final summary line")


def _jsonable(value: Any) -> Any:
    """Converts NumPy values and containers for strict JSON; NaN and Inf become null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy scalars and arrays
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _format_float(value: Any) -> str:
    return "nan" if value is None else f"{float(value):.4f}"


def _epoch_line(record: Dict[str, Any], total: int, reference: Optional[Dict[str, Any]]) -> str:
    from ._callbacks import format_epoch

    line = format_epoch(record, total)
    if reference is not None:
        ref = [f"loss={_format_float(reference.get('loss'))}",
               f"acc={_format_float(reference.get('accuracy'))}"]
        if reference.get("val_accuracy") is not None:
            ref.append(f"val_acc={_format_float(reference.get('val_accuracy'))}")
        line += "  | float64 " + "  ".join(ref)
    return line


def _resolve_widths(widths: Sequence[int], n_features: int, n_classes: int,
                    name: str) -> List[int]:
    """Every layer width from inputs to classes. --layers lists them all when its first
    width is the dataset's features and its last the classes; else only the hidden ones.
    Only one end matching is taken for a typo."""
    first, last = widths[0] == n_features, widths[-1] == n_classes
    if len(widths) >= 2 and first and last:
        return list(widths)
    if len(widths) == 1 or not (first or last):
        return [n_features, *widths, n_classes]
    _check_widths(widths, n_features, n_classes, name)
    return list(widths)


def _check_widths(widths: Sequence[int], n_features: int, n_classes: int, name: str) -> None:
    shown = "-".join(str(w) for w in widths)
    if widths[0] != n_features:
        raise ValueError(
            f"--layers {shown}: the first width is {widths[0]} but dataset {name!r} has "
            f"{n_features} features per sample"
        )
    if widths[-1] != n_classes:
        raise ValueError(
            f"--layers {shown}: the last width is {widths[-1]} but dataset {name!r} has "
            f"{n_classes} classes"
        )


def _output_dir(requested: Optional[str]) -> str:
    out = requested or os.path.join("runs", time.strftime("train-%Y%m%d-%H%M%S"))
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create output directory {out!r}: {exc}") from exc
    return out


def _cnn(data, activation: str, output_activation: str):
    """`--model cnn`: two 3x3 convolutions (16 and 32 channels, padding 1), each followed by
    the activation and 2x2 max pooling, then one dense layer to the classes."""
    import veil

    if data.image_shape is None:
        raise ValueError(f"--model cnn needs an image dataset (digits, IDX images, CIFAR-10); "
                         f"{data.name!r} has no image shape")
    c, h, w = data.image_shape
    act = getattr(veil, _ACTIVATION_CLASSES[activation])
    layers: List[Any] = [veil.Conv2d(c, 16, 3, padding=1), act(), veil.MaxPool2d(2),
                         veil.Conv2d(16, 32, 3, padding=1), act(), veil.MaxPool2d(2),
                         veil.Flatten(), veil.Dense(32 * (h // 4) * (w // 4), data.n_classes)]
    if output_activation != "identity":
        layers.append(getattr(veil, _ACTIVATION_CLASSES[output_activation])())
    return veil.Sequential(layers, input_shape=data.image_shape)


def _run_train(args: argparse.Namespace) -> int:
    from .datasets import load_dataset

    loss_name = _LOSS_NAMES[args.loss]
    halve_at: Tuple[int, ...] = tuple(args.halve_at)
    data = load_dataset(args.dataset, test_fraction=args.test_fraction,
                        validation_fraction=args.val_fraction, seed=args.seed,
                        label_column=args.label_column)
    widths = _resolve_widths(args.layers, data.n_features, data.n_classes, data.name)
    # Created before training so that an unusable --out fails in seconds, not after the run.
    out = _output_dir(args.resume or args.out)

    import numpy as np

    import veil

    sealing_key: Optional[bytes] = None
    if args.insecure_test_key:
        sealing_key = veil.INSECURE_TEST_SEALING_KEY
    elif args.sealing_key_file:
        sealing_key = veil.read_sealing_key(args.sealing_key_file)
    checkpoint_dir = os.path.join(out, "checkpoint") if sealing_key is not None else None
    if args.resume and sealing_key is None:
        raise ValueError("--resume needs the key the checkpoint was sealed with "
                         "(--sealing-key-file or --insecure-test-key)")
    # A run of several workers; one worker trains in this process, without Ray.
    run: Dict[str, Any] = {}
    if args.workers > 1:
        run = {"workers": args.workers, "run_key": None if args.run_key_file is None
               else veil.read_sealing_key(args.run_key_file)}
        if args.resume and args.run_key_file is None:
            raise ValueError("--resume with --workers needs the run's key (--run-key-file)")
    elif args.run_key_file is not None:
        raise ValueError("--run-key-file belongs to a run of several workers (--workers N)")

    # Standardization is fitted on the training split only, and applied to every split.
    mean = scale = None
    X_train, X_val, X_test = data.X_train, data.X_val, data.X_test
    if args.standardize:
        mean = X_train.mean(axis=0)
        scale = X_train.std(axis=0)
        scale[scale == 0] = 1.0  # a constant feature stays 0 rather than dividing by 0
        X_train, X_test = (X_train - mean) / scale, (X_test - mean) / scale
        X_val = None if X_val is None else (X_val - mean) / scale

    output_activation = args.output_activation or ("sigmoid" if loss_name == "mse" else "identity")
    if args.model == "cnn":
        model = _cnn(data, args.activation, output_activation)
        widths = [model.input_size] + [o for _i, o, _a in model.layer_specs()]
    else:
        activation_names = [args.activation] * (len(widths) - 2) + [output_activation]
        layers: List[Any] = []
        for (n_in, n_out), name in zip(zip(widths[:-1], widths[1:]), activation_names):
            layers.append(veil.Dense(n_in, n_out))
            if name != "identity":
                layers.append(getattr(veil, _ACTIVATION_CLASSES[name])())
        model = veil.Sequential(layers)
    activation_names = [a for _i, _o, a in model.layer_specs()]
    initial_path = os.path.join(out, "initial_weights.npz")
    if args.resume:
        trainer = veil.Trainer.resume(os.path.join(out, "checkpoint"), device=args.device,
                                      sealing_key=sealing_key, threads=args.threads, **run)
        if trainer.model.layer_specs() != model.layer_specs():
            raise ValueError(f"--resume {args.resume}: the checkpoint holds "
                             f"{trainer.model!r}, not {model!r}")
    else:
        trainer = veil.Trainer(model, mode="verify", device=args.device, loss=loss_name,
                               lr=2.0 ** -args.lr_exp, seed=args.seed, halve_lr_at=halve_at,
                               batch_size=args.batch_size, threads=args.threads, **run)
        # Kept so that the float reference (also on resume) starts from veil's initial weights.
        initial_weights = trainer.export_weights()
        np.savez(initial_path, *initial_weights)

    validation = None if X_val is None else (X_val, data.y_val)
    float_epochs: Optional[List[Dict[str, Any]]] = None
    float_test: Optional[Dict[str, float]] = None
    if args.compare_float:
        from ._conv import shapes
        from ._reference import FloatMLP

        with np.load(initial_path) as stored:
            initial = [stored[f"arr_{l}"] for l in range(len(stored.files))]
        # veil's trainer divides each batch's summed gradient by 2^ceil(log2(batch_size)) so
        # the step is an exact shift; the reference uses the same divisor to take the same
        # steps (this differs from the batch mean on a smaller last batch). It trains first
        # (it is fast) so that each epoch's line can show both.
        divisor = 1 << (args.batch_size - 1).bit_length()
        reference = FloatMLP(initial, activation_names, loss_name, update_divisor=divisor,
                             shapes=shapes(model.wire_specs()))
        float_epochs = reference.fit(X_train, data.y_train, args.epochs, args.batch_size,
                                     args.seed, args.lr_exp, halve_at, validation_data=validation)
        float_test = reference.evaluate(X_test, data.y_test)

    def print_epoch(record: Dict[str, Any]) -> None:
        index = int(record["epoch"]) - 1
        ref = float_epochs[index] if float_epochs and index < len(float_epochs) else None
        # flush: one line per epoch reaches a log file (`veil train > log`) as it happens.
        print(_epoch_line(record, args.epochs, ref), flush=True)

    trainer.fit(X_train, data.y_train, epochs=max(0, args.epochs - trainer.epochs_done),
                batch_size=args.batch_size, validation_data=validation, verbose=0,
                checkpoint_dir=checkpoint_dir, sealing_key=sealing_key,
                callbacks=[] if args.quiet else [print_epoch])
    veil_epochs = list(trainer.history["epochs"])
    test = trainer.evaluate(X_test, data.y_test)
    checks_passed = int(trainer.checks_passed)
    # The worst epoch's fraction of clipped fixed-point values: above 0.1% the inputs are
    # out of scale (fit warned), and accuracy suffers.
    clipped = max((float(r.get("clipped_fraction") or 0.0) for r in veil_epochs), default=0.0)

    test_accuracy = float(test["accuracy"])
    float_accuracy = float("nan") if float_test is None else float(float_test["accuracy"])
    dataset_spec = args.dataset if not os.path.exists(args.dataset) else os.path.abspath(
        args.dataset)
    summary = {
        "test_accuracy": test_accuracy,
        "test_loss": float(test["loss"]),
        "float_test_accuracy": float_accuracy,
        "float_test_loss": None if float_test is None else float(float_test["loss"]),
        "checks_passed": checks_passed,
        "clipped_fraction": clipped,
        "veil_version": getattr(veil, "__version__", None),
        "config": {
            "dataset": args.dataset, "model": args.model, "layers": widths,
            "activation": args.activation,
            "output_activation": output_activation,
            "loss": loss_name, "epochs": args.epochs, "batch_size": args.batch_size,
            "lr_exp": args.lr_exp, "halve_at": list(halve_at), "device": args.device,
            "workers": args.workers,
            "seed": args.seed, "test_fraction": args.test_fraction,
            "val_fraction": args.val_fraction, "compare_float": args.compare_float,
            "standardize": args.standardize, "label_column": args.label_column,
        },
        "dataset": {
            "name": data.name, "n_train": len(data.y_train),
            "n_val": 0 if data.y_val is None else len(data.y_val),
            "n_test": len(data.y_test), "n_features": data.n_features,
            "n_classes": data.n_classes,
        },
        "epochs": veil_epochs,
        "float_epochs": float_epochs,
    }
    summary = _jsonable(summary)
    history_path = os.path.join(out, "history.json")
    with open(history_path, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2, allow_nan=False)
        handle.write("\n")

    from ._plotting import plot_history

    curves_path = plot_history(summary, os.path.join(out, "curves.png"))
    if not args.quiet:
        print(f"wrote {history_path} and {curves_path}")
    # The one model file: checked weights, activations, loss, the standardization and the
    # split, for `veil predict --model`, veil.Inference and veil.load_model.
    model_path = veil.save_model(
        os.path.join(out, "model.npz"), trainer, mean=mean, scale=scale, classes=data.classes,
        info=_jsonable({
            "dataset": dataset_spec, "seed": args.seed, "test_fraction": args.test_fraction,
            "val_fraction": args.val_fraction,
            "label_column": (args.label_column if args.label_column is not None else None),
            "feature_names": None if data.feature_names is None else list(data.feature_names),
        }))
    if not args.quiet:
        print(f"wrote {model_path}")
    # The last line is a stable, machine-readable summary (scripts and CI parse it).
    print(f"test_accuracy={test_accuracy:.4f} float_test_accuracy={float_accuracy:.4f} "
          f"checks_passed={checks_passed} clipped={clipped:.4f}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# veil bench


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="widths 256,1024 and batches 64,256 (a few minutes at most)")
    parser.add_argument("--widths", type=_int_list, default=None, metavar="W1,W2,...",
                        help="widths to sweep (default: 256,512,1024,2048,4096)")
    parser.add_argument("--batches", type=_int_list, default=None, metavar="B1,B2,...",
                        help="batch sizes to sweep (default: 32,128,256,512)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                        help="device for (a) and (c) (default: cpu)")
    parser.add_argument("--repeats", type=_int_at_least(1), default=15,
                        help="steps per configuration; the median is reported (default: 15, since "
                             "step times on a shared machine vary by a quarter)")
    parser.add_argument("--threads", type=_int_list, default=None, metavar="T1,T2,...",
                        help="enclave thread counts to time (c) with; each row reports the "
                             "enclave's part of a step per count and its speed-up over the first "
                             "(default: 1 and the cores available)")
    parser.add_argument("--enclave-only-max-width", type=_int_at_least(1), default=4096,
                        help="skip baseline (b) above this width (it is slow by design)")
    parser.add_argument("--out", default=None, help="write bench.json and bench.png here")
    parser.add_argument(
        "--conv", type=_int_list, nargs="?", const=[64, 32, 64], default=None,
        metavar="C,S,B",
        help="instead of the MLP sweep, the conv row: a C -> C 3x3 convolution on SxS images at "
             "batch B (default with no value: 64,32,64; a quick one: 8,16,16)")


def _int_list(text: str) -> List[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _run_bench(args: argparse.Namespace) -> int:
    from veil import bench

    if args.conv is not None:
        if len(args.conv) != 3:
            raise ValueError(f"--conv takes C,S,B (channels, image side, batch), got "
                             f"{','.join(map(str, args.conv))}")
        bench.run_conv(*args.conv, device=args.device, repeats=args.repeats, out=args.out)
        return EXIT_OK
    bench.run(quick=args.quick, widths=args.widths, batches=args.batches, device=args.device,
              repeats=args.repeats, out=args.out, threads=args.threads,
              enclave_only_max_width=args.enclave_only_max_width)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# veil predict


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="FILE",
                        help="the model file: OUT/model.npz of `veil train --out OUT`, or one "
                             "written by veil.save_model")
    parser.add_argument(
        "--data", metavar="FILE", default=None,
        help="samples to predict: a .csv file with a header row (a label column is optional) "
             "or an .npz file with X (and optionally y); predictions are scored when labels "
             "are given (default: the test split of the model's training dataset)")
    parser.add_argument("--label-column", metavar="NAME", default=None,
                        help="the CSV's label column, if it has one (default: the training "
                             "label column, or one named label, target, class or y)")
    parser.add_argument("--output", metavar="FILE", default=None,
                        help="write one CSV row per sample: the predicted class and each "
                             "class's probability")
    parser.add_argument(
        "--mode", choices=("private", "verify"), default="private",
        help="private: the device sees only one-time-padded activations; verify: it sees the "
             "quantized activations (default: %(default)s)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where the untrusted matrix products run (default: %(default)s)")
    parser.add_argument("--threads", type=_int_at_least(1), default=None,
                        help="threads the enclave's passes run on; results are the same for any "
                             "count (default: 1)")
    parser.add_argument("--batch-size", type=_int_at_least(1), default=64,
                        help="samples per batch (and per precomputed slot) (default: %(default)s)")
    parser.add_argument("--frac-weights", type=_int_at_least(0), default=10, metavar="F",
                        help="fractional bits of the quantized weights (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the final summary line")


def _predict_inputs(saved, args: argparse.Namespace):
    """(X, y or None, where from) for `veil predict`, the columns in the model's order."""
    from .datasets import load_dataset, read_features

    info = saved.info
    if args.data is None:
        if not info.get("dataset"):
            raise ValueError(f"{args.model} does not record its training dataset; give --data")
        data = load_dataset(str(info["dataset"]), test_fraction=float(info["test_fraction"]),
                            validation_fraction=float(info.get("val_fraction") or 0.0),
                            seed=int(info["seed"]), label_column=info.get("label_column"))
        return data.X_test, data.y_test, f"the test split of {info['dataset']}"
    label_column = args.label_column or info.get("label_column")
    X, y, names = read_features(args.data, label_column=label_column, classes=saved.classes)
    wanted = info.get("feature_names")
    if names is not None and wanted and names != wanted:
        missing = [n for n in wanted if n not in names]
        if missing:
            raise ValueError(f"{args.data}: lacks the model's feature columns "
                             f"{', '.join(missing[:5])}")
        X = X[:, [names.index(n) for n in wanted]]
    if X.shape[1] != saved.input_size:
        raise ValueError(f"{args.data}: {X.shape[1]} features per sample but the model takes "
                         f"{saved.input_size}")
    return X, y, args.data


def _write_predictions(path: str, classes, probs, names) -> None:
    import csv

    labels = names if names is not None else [str(c) for c in range(probs.shape[1])]
    try:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["class"] + [f"prob_{name}" for name in labels])
            for c, row in zip(classes, probs):
                writer.writerow([labels[c]] + [f"{p:.6g}" for p in row])
    except OSError as exc:
        raise ValueError(f"cannot write --output {path!r}: {exc.strerror or exc}") from None


def _run_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from ._inference import Inference, float_forward, load_model

    saved = load_model(args.model)
    X, y, source = _predict_inputs(saved, args)
    infer = Inference(saved, mode=args.mode, device=args.device,
                      frac_weights=args.frac_weights, batch_size=args.batch_size,
                      threads=args.threads)
    if args.mode == "private":
        slots = -(-len(X) // args.batch_size)
        stored = infer.precompute(batches=slots, verbose=0 if args.quiet else 1)
        if not args.quiet:
            print(f"sealed {slots} slots: {stored} bytes kept on the host")
    probs = infer.predict_proba(X)  # applies the model's standardization to the raw inputs
    predicted = np.argmax(probs, axis=1)
    if args.output:
        _write_predictions(args.output, predicted, probs, saved.classes)
        if not args.quiet:
            print(f"wrote {len(X)} predictions of {source} to {args.output}")
    # The last line is a stable, machine-readable summary, like `veil train`'s.
    if y is None:
        print(f"predictions={len(X)} checks_passed={infer.checks_passed} mode={args.mode}")
        return EXIT_OK
    if y.max(initial=0) >= probs.shape[1]:
        raise ValueError(f"{source}: labels reach {int(y.max())} but the model has "
                         f"{probs.shape[1]} classes")
    accuracy = float(np.mean(predicted == y))
    float_probs = float_forward(saved.weights, saved.activations, saved.loss,
                                saved.preprocess(X), model=saved.model)
    float_accuracy = float(np.mean(np.argmax(float_probs, axis=1) == y))
    print(f"test_accuracy={accuracy:.4f} float_test_accuracy={float_accuracy:.4f} "
          f"checks_passed={infer.checks_passed} mode={args.mode}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# Dispatch

SUBCOMMANDS: Dict[str, Subcommand] = {
    "info": Subcommand(
        help="show the version, the enclave backend, image and features, and the bench image",
        add_arguments=_info_arguments,
        run=_run_info,
    ),
    "train": Subcommand(
        help="train an MLP with every device product verified by the enclave",
        add_arguments=_train_arguments,
        run=_run_train,
    ),
    "predict": Subcommand(
        help="predict with a trained model, privately (or in verify mode); score when labelled",
        add_arguments=_predict_arguments,
        run=_run_predict,
    ),
    "bench": Subcommand(
        help="measure veil against insecure training and against training inside the enclave",
        add_arguments=_bench_arguments,
        run=_run_bench,
    ),
}
"""Subcommand name -> :class:`Subcommand`; ``veil --help`` lists them in this order."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("veil")
    except PackageNotFoundError:  # run from a source tree
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """Builds the argument parser with one subparser per entry of :data:`SUBCOMMANDS`.

    Returns:
        The top-level parser; the chosen subcommand's name is stored in ``command``.
    """
    parser = argparse.ArgumentParser(
        prog="veil",
        description="Train and run neural networks with a trusted enclave checking an "
                    "untrusted accelerator.",
    )
    parser.add_argument("--version", action="version", version=f"veil {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, command in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(sub)
    return parser


def _report(exc: BaseException) -> Optional[int]:
    """Prints a one-line message for an expected failure and returns its exit code.

    Returns None for exceptions that are bugs rather than outcomes, so they keep their traceback.
    """
    import veil

    # VerificationError first: it must never be reported as a plain usage error, whatever
    # its base classes.
    if isinstance(exc, veil.VerificationError):
        print(f"veil: verification failed: {exc}", file=sys.stderr)
        return EXIT_VERIFICATION
    if isinstance(exc, (veil.ConfigError, ValueError)):
        print(f"veil: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, veil.EnclaveError):
        print(f"veil: enclave error: {exc}", file=sys.stderr)
        return EXIT_ENCLAVE
    if isinstance(exc, veil.Error):
        print(f"veil: error: {exc}", file=sys.stderr)
        return EXIT_ENCLAVE
    if isinstance(exc, OSError):  # a file that cannot be read or written
        where = f" {exc.filename!r}" if exc.filename else ""
        print(f"veil: error:{where} {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the ``veil`` command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The process exit code (see the module docstring).
    """
    args = build_parser().parse_args(argv)
    # Warnings (clipped values, the CPU fallback) as one line each, without source lines.
    warnings.formatwarning = lambda message, category, *rest, **kw: (
        f"veil: warning: {message}\n")
    try:
        return SUBCOMMANDS[args.command].run(args)
    except KeyboardInterrupt:
        print("veil: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 -- classified by _report, re-raised otherwise
        code = _report(exc)
        if code is None:
            raise
        return code
