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
    if len(widths) < 2 or any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(
            f"invalid layer widths {text!r}: expected at least two positive widths joined by "
            "'-', e.g. 64-128-10"
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
        help="'digits', a path to an .npz file (arrays X, y and optionally X_test, y_test), "
             "'idx:IMAGES,LABELS', or a directory with the four MNIST IDX files "
             "(default: %(default)s)")
    parser.add_argument(
        "--layers", type=_layer_widths, default=_layer_widths("64-128-128-10"),
        metavar="N-H-...-C",
        help="layer widths from input features to classes (default: 64-128-128-10)")
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
                        help="output directory for history.json, curves.png and weights.npz "
                             "(default: runs/train-<timestamp>)")
    parser.add_argument(
        "--resume", metavar="DIR", default=None,
        help="resume the run whose --out was DIR from its last checkpoint (DIR/checkpoint); "
             "--epochs is the total to reach")
    key = parser.add_mutually_exclusive_group()
    key.add_argument(
        "--sealing-key-file", metavar="FILE", default=None,
        help="32-byte key file to seal a checkpoint into OUT/checkpoint after every epoch")
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


def _epoch_line(index: int, total: int, record: Dict[str, Any],
                reference: Optional[Dict[str, Any]]) -> str:
    parts = [f"epoch {index + 1:>{len(str(total))}}/{total}",
             f"loss={_format_float(record.get('loss'))}",
             f"acc={_format_float(record.get('accuracy'))}"]
    if record.get("val_accuracy") is not None:
        parts.append(f"val_loss={_format_float(record.get('val_loss'))}")
        parts.append(f"val_acc={_format_float(record.get('val_accuracy'))}")
    if record.get("checks_passed") is not None:
        parts.append(f"checks={int(record['checks_passed'])}")
    if record.get("seconds") is not None:
        parts.append(f"{float(record['seconds']):.1f}s")
    line = "  ".join(parts)
    if reference is not None:
        ref = [f"loss={_format_float(reference.get('loss'))}",
               f"acc={_format_float(reference.get('accuracy'))}"]
        if reference.get("val_accuracy") is not None:
            ref.append(f"val_acc={_format_float(reference.get('val_accuracy'))}")
        line += "  | float64 " + "  ".join(ref)
    return line


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


def _run_train(args: argparse.Namespace) -> int:
    from .datasets import load_dataset

    widths: List[int] = list(args.layers)
    loss_name = _LOSS_NAMES[args.loss]
    halve_at: Tuple[int, ...] = tuple(args.halve_at)
    data = load_dataset(args.dataset, test_fraction=args.test_fraction,
                        validation_fraction=args.val_fraction, seed=args.seed)
    _check_widths(widths, data.n_features, data.n_classes, data.name)
    # Created before training so that an unusable --out fails in seconds, not after the run.
    out = _output_dir(args.resume or args.out)

    import numpy as np

    import veil

    sealing_key: Optional[bytes] = None
    if args.insecure_test_key:
        sealing_key = veil.INSECURE_TEST_SEALING_KEY
    elif args.sealing_key_file:
        with open(args.sealing_key_file, "rb") as f:
            sealing_key = f.read()
    checkpoint_dir = os.path.join(out, "checkpoint") if sealing_key is not None else None
    if args.resume and sealing_key is None:
        raise ValueError("--resume needs the key the checkpoint was sealed with "
                         "(--sealing-key-file or --insecure-test-key)")

    output_activation = args.output_activation or ("sigmoid" if loss_name == "mse" else "identity")
    activation_names = [args.activation] * (len(widths) - 2) + [output_activation]
    layers: List[Any] = []
    for (n_in, n_out), name in zip(zip(widths[:-1], widths[1:]), activation_names):
        layers.append(veil.Dense(n_in, n_out))
        if name != "identity":
            layers.append(getattr(veil, _ACTIVATION_CLASSES[name])())
    model = veil.Sequential(layers)
    initial_path = os.path.join(out, "initial_weights.npz")
    if args.resume:
        trainer = veil.Trainer.resume(os.path.join(out, "checkpoint"), device=args.device,
                                      sealing_key=sealing_key)
        if trainer.model.layer_specs() != model.layer_specs():
            raise ValueError(f"--resume {args.resume}: the checkpoint holds "
                             f"{trainer.model!r}, not {model!r}")
    else:
        trainer = veil.Trainer(model, mode="verify", device=args.device, loss=loss_name,
                               lr=2.0 ** -args.lr_exp, seed=args.seed, halve_lr_at=halve_at,
                               batch_size=args.batch_size)
        # Kept so that the float reference (also on resume) starts from veil's initial weights.
        initial_weights = trainer.export_weights()
        np.savez(initial_path, *initial_weights)
    initial = None
    if args.compare_float:
        with np.load(initial_path) as stored:
            initial = [stored[f"arr_{l}"] for l in range(len(stored.files))]

    validation = None if data.X_val is None else (data.X_val, data.y_val)
    history = trainer.fit(data.X_train, data.y_train,
                          epochs=max(0, args.epochs - trainer.epochs_done),
                          batch_size=args.batch_size, validation_data=validation,
                          verbose=0 if args.quiet else 1, checkpoint_dir=checkpoint_dir,
                          sealing_key=sealing_key)
    veil_epochs = list(history["epochs"])
    test = trainer.evaluate(data.X_test, data.y_test)
    checks_passed = int(trainer.checks_passed)

    float_epochs: Optional[List[Dict[str, Any]]] = None
    float_test: Optional[Dict[str, float]] = None
    if initial is not None:
        from ._reference import FloatMLP

        activations = activation_names
        # veil's trainer divides each batch's summed gradient by 2^ceil(log2(batch_size)) so
        # the step is an exact shift; the reference uses the same divisor to take the same
        # steps (this differs from the batch mean on a smaller last batch).
        divisor = 1 << (args.batch_size - 1).bit_length()
        reference = FloatMLP(initial, activations, loss_name, update_divisor=divisor)
        float_epochs = reference.fit(data.X_train, data.y_train, args.epochs, args.batch_size,
                                     args.seed, args.lr_exp, halve_at, validation_data=validation)
        float_test = reference.evaluate(data.X_test, data.y_test)

    if not args.quiet:
        for index, record in enumerate(veil_epochs):
            ref = float_epochs[index] if float_epochs and index < len(float_epochs) else None
            print(_epoch_line(index, len(veil_epochs), record, ref))

    test_accuracy = float(test["accuracy"])
    float_accuracy = float("nan") if float_test is None else float(float_test["accuracy"])
    summary = {
        "test_accuracy": test_accuracy,
        "test_loss": float(test["loss"]),
        "float_test_accuracy": float_accuracy,
        "float_test_loss": None if float_test is None else float(float_test["loss"]),
        "checks_passed": checks_passed,
        "veil_version": getattr(veil, "__version__", None),
        "config": {
            "dataset": args.dataset, "layers": widths, "activation": args.activation,
            "output_activation": output_activation,
            "loss": loss_name, "epochs": args.epochs, "batch_size": args.batch_size,
            "lr_exp": args.lr_exp, "halve_at": list(halve_at), "device": args.device,
            "seed": args.seed, "test_fraction": args.test_fraction,
            "val_fraction": args.val_fraction, "compare_float": args.compare_float,
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
    # The checked float weights, for `veil predict --weights DIR/weights.npz` and veil.Inference.
    from ._inference import save_weights

    weights_path = os.path.join(out, "weights.npz")
    save_weights(weights_path, trainer.export_weights(), activation_names, loss_name)
    if not args.quiet:
        print(f"wrote {weights_path}")
    # The last line is a stable, machine-readable summary (scripts and CI parse it).
    print(f"test_accuracy={test_accuracy:.4f} float_test_accuracy={float_accuracy:.4f} "
          f"checks_passed={checks_passed}")
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
    parser.add_argument("--enclave-only-max-width", type=_int_at_least(1), default=4096,
                        help="skip baseline (b) above this width (it is slow by design)")
    parser.add_argument("--out", default=None, help="write bench.json and bench.png here")


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

    bench.run(quick=args.quick, widths=args.widths, batches=args.batches, device=args.device,
              repeats=args.repeats, out=args.out,
              enclave_only_max_width=args.enclave_only_max_width)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# veil predict


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, metavar="FILE",
                        help="the weights.npz that `veil train --out DIR` writes")
    parser.add_argument(
        "--dataset", default="digits",
        help="as for `veil train`; predictions are scored on its test split (default: "
             "%(default)s)")
    parser.add_argument(
        "--mode", choices=("private", "verify"), default="private",
        help="private: the device sees only one-time-padded activations; verify: it sees the "
             "quantized activations (default: %(default)s)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where the untrusted matrix products run (default: %(default)s)")
    parser.add_argument("--batch-size", type=_int_at_least(1), default=64,
                        help="samples per batch (and per precomputed slot) (default: %(default)s)")
    parser.add_argument("--frac-weights", type=_int_at_least(0), default=10, metavar="F",
                        help="fractional bits of the quantized weights (default: %(default)s)")
    parser.add_argument("--seed", type=_int_at_least(0), default=0,
                        help="seed of the data split; use training's (default: %(default)s)")
    parser.add_argument("--test-fraction", type=_fraction, default=0.2,
                        help="fraction held out for testing; use training's (default: "
                             "%(default)s)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the final summary line")


def _run_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from .datasets import load_dataset
    from ._inference import Inference, float_forward, load_weights

    weights, activations, loss = load_weights(args.weights)
    data = load_dataset(args.dataset, test_fraction=args.test_fraction, seed=args.seed)
    widths = [w.shape[0] - 1 for w in weights] + [weights[-1].shape[1]]
    _check_widths(widths, data.n_features, data.n_classes, data.name)
    infer = Inference(args.weights, mode=args.mode, device=args.device,
                      frac_weights=args.frac_weights, batch_size=args.batch_size)
    if args.mode == "private":
        slots = -(-len(data.y_test) // args.batch_size)
        stored = infer.precompute(batches=slots, verbose=0 if args.quiet else 1)
        if not args.quiet:
            print(f"sealed {slots} slots: {stored} bytes kept on the host")
    result = infer.evaluate(data.X_test, data.y_test)
    float_probs = float_forward(weights, activations, loss, data.X_test)
    float_accuracy = float(np.mean(np.argmax(float_probs, axis=1) == data.y_test))
    # The last line is a stable, machine-readable summary, like `veil train`'s.
    print(f"test_accuracy={result['accuracy']:.4f} float_test_accuracy={float_accuracy:.4f} "
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
        help="run a trained model's test split with private (or verify-mode) inference",
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
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the ``veil`` command line.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The process exit code (see the module docstring).
    """
    args = build_parser().parse_args(argv)
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
