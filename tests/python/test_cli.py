"""Tests for the command line (``python -m veil``), run as a separate process."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

import veil

from veil.cli import SUBCOMMANDS, build_parser

SUMMARY = re.compile(
    r"^test_accuracy=(\d\.\d{4}) float_test_accuracy=(\d\.\d{4}|nan) checks_passed=(\d+) "
    r"clipped=(\d\.\d{4})$"
)


def run_veil(*args, cwd):
    return subprocess.run([sys.executable, "-m", "veil", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_help_exits_zero(tmp_path):
    result = run_veil("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in SUBCOMMANDS:
        assert name in result.stdout


def test_train_help_exits_zero(tmp_path):
    result = run_veil("train", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for option in ("--layers", "--activation", "--loss", "--halve-at", "--compare-float"):
        assert option in result.stdout


def test_no_subcommand_is_a_usage_error(tmp_path):
    assert run_veil(cwd=tmp_path).returncode == 2


def test_parser_defaults():
    args = build_parser().parse_args(["train"])
    assert args.dataset == "digits" and args.layers == [128, 128]
    assert (args.activation, args.loss, args.epochs, args.batch_size) == ("relu", "ce", 30, 64)
    assert (args.lr_exp, args.halve_at, args.device, args.seed) == (2, (20,), "auto", 0)
    assert build_parser().parse_args(["train", "--halve-at", ""]).halve_at == ()
    assert build_parser().parse_args(["train", "--halve-at", "9,3"]).halve_at == (3, 9)


@pytest.mark.parametrize("layers, width", [("64-32-9", "10"), ("16-32-10", "64")])
def test_layer_dataset_mismatch_exits_2(tmp_path, layers, width):
    result = run_veil("train", "--dataset", "digits", "--layers", layers, "--epochs", "1",
                      "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("veil: error:")
    assert layers in result.stderr and width in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--layers", "64-x-10"],
        ["--layers", "0"],
        ["--epochs", "0"],
        ["--halve-at", "3,3"],
        ["--activation", "tanh"],
        ["--dataset", "no-such-dataset"],
        ["--dataset", "missing.npz"],
    ],
)
def test_bad_options_exit_2(tmp_path, args):
    result = run_veil("train", *args, "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error" in result.stderr


def test_info_names_the_enclave_image_and_the_bench_image(tmp_path):
    result = run_veil("info", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert lines["enclave backend"] in ("virtual", "openenclave")
    assert os.path.isfile(lines["enclave image"])
    # The bench image is there exactly when this installation was built with benchmarks.
    built = importlib.util.find_spec("veil._bench") is not None
    if built:
        assert os.path.isfile(lines["bench image"])
        assert os.path.dirname(lines["bench image"]) == os.path.dirname(lines["enclave image"])
    else:
        assert lines["bench image"].startswith("not built")


def test_train_with_float_comparison_writes_its_outputs(tmp_path):
    out = tmp_path / "run"
    result = run_veil("train", "--dataset", "digits", "--layers", "64-16-10", "--epochs", "2",
                      "--halve-at", "1", "--val-fraction", "0.1", "--device", "cpu",
                      "--compare-float", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    match = SUMMARY.match(lines[-1])
    assert match, lines[-1]
    assert match.group(2) != "nan" and int(match.group(3)) > 0
    assert sum(line.startswith("epoch ") for line in lines) == 2
    history = json.loads((out / "history.json").read_text())
    assert history["test_accuracy"] == pytest.approx(float(match.group(1)), abs=1e-4)
    assert history["checks_passed"] == int(match.group(3))
    assert history["config"]["layers"] == [64, 16, 10]
    assert len(history["epochs"]) == 2 and len(history["float_epochs"]) == 2
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_quiet_without_float_prints_only_the_summary(tmp_path):
    result = run_veil("train", "--layers", "64-10", "--epochs", "1", "--device", "cpu",
                      "--quiet", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    match = SUMMARY.match(lines[0])
    assert match and match.group(2) == "nan"


def test_train_threads_change_nothing_but_the_threads(tmp_path):
    runs = []
    for threads in ("1", "3"):
        out = tmp_path / f"run{threads}"
        result = run_veil("train", "--layers", "64-32-10", "--epochs", "1", "--device", "cpu",
                          "--quiet", "--threads", threads, "--out", str(out), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        epochs = json.loads((out / "history.json").read_text())["epochs"]
        runs.append((result.stdout, [{k: v for k, v in e.items() if k != "seconds"}
                                     for e in epochs]))
    assert runs[0] == runs[1]
    result = run_veil("train", "--threads", "0", cwd=tmp_path)
    assert result.returncode == 2 and "--threads" in result.stderr


def test_plot_history_writes_a_png(tmp_path):
    from veil._plotting import plot_history

    epochs = [{"loss": 1.0 / (i + 1), "accuracy": 0.5 + 0.1 * i, "val_loss": None,
               "val_accuracy": None} for i in range(4)]
    reference = [dict(record, val_loss=0.9, val_accuracy=0.6) for record in epochs]
    for history in ({"epochs": epochs}, {"epochs": epochs, "float_epochs": reference}):
        path = plot_history(history, tmp_path / "curves.png")
        assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path == str(tmp_path / "curves.png")
    with pytest.raises(ValueError, match="epochs"):
        plot_history({}, tmp_path / "none.png")


def test_info_says_the_enclave_is_not_a_debug_enclave(tmp_path):
    result = run_veil("info", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "debug enclave: no" in result.stdout


def test_a_debug_enclave_is_an_explicit_opt_in():
    assert veil.enclave_info()["debug"] is False
    with pytest.raises(veil.EnclaveError, match="VEIL_ENCLAVE_DEBUG"):
        veil.load_enclave(debug=True)
