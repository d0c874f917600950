"""A new user's first hour (issue 18): data in, progress out, models saved, no tracebacks.

Each test names the numbered point of the issue it checks. They go through the installed
package and the ``veil`` command line, as a user would.
"""
import csv
import json
import os
import re
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import veil

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def run_veil(*args, cwd, **kw):
    return subprocess.run([sys.executable, "-m", "veil", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, **kw)


def mlp(*widths):
    layers = []
    for k, (i, o) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(veil.Dense(i, o))
        if k < len(widths) - 2:
            layers.append(veil.ReLU())
    return veil.Sequential(layers)


def write_csv(path, X, labels=None, label_name="target"):
    names = [f"f{j}" for j in range(X.shape[1])]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names + ([label_name] if labels is not None else []))
        for k, row in enumerate(X):
            w.writerow([repr(float(v)) for v in row] + ([labels[k]] if labels is not None else []))


@pytest.fixture(scope="module")
def cancer_csv(tmp_path_factory):
    """breast_cancer as a user has it: raw features (0.05 to 2500), class names as labels;
    my.csv to train on and new.csv without labels to predict, new_labels.npy to check."""
    from sklearn.datasets import load_breast_cancer

    d = tmp_path_factory.mktemp("cancer")
    b = load_breast_cancer()
    order = np.random.default_rng(0).permutation(len(b.target))
    train, new = order[:480], order[480:]
    names = np.asarray(b.target_names)
    write_csv(d / "my.csv", b.data[train], names[b.target[train]])
    write_csv(d / "new.csv", b.data[new])
    write_csv(d / "new_labelled.csv", b.data[new], names[b.target[new]])
    np.save(d / "new_labels.npy", names[b.target[new]])
    return d


def last_line(result):
    return result.stdout.strip().splitlines()[-1]


def one_line_error(result):
    """The user-facing error contract: a non-zero exit, one line on stderr, no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("veil: error:"), result.stderr
    return lines[0]


# -- 1. unscaled inputs: a warning, a history field, the CLI's last line, --standardize ---------

def test_1_unscaled_inputs_warn_with_the_fraction_and_the_fix(digits):
    trainer = veil.Trainer(mlp(64, 128, 128, 10), device="cpu", seed=0)
    with pytest.warns(veil.SaturationWarning, match=r"[0-9.]+% of the fixed-point values were "
                                                    r"clipped.*standardize"):
        history = trainer.fit(digits.X_train * 16, digits.y_train, epochs=2, verbose=0)
    assert history.history["clipped_fraction"][0] > 1e-3
    scaled = veil.Trainer(mlp(64, 128, 128, 10), device="cpu", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", veil.SaturationWarning)
        history = scaled.fit(digits.X_train, digits.y_train, epochs=2, verbose=0)
    assert history.history["clipped_fraction"] == [0.0, 0.0]


def test_1_cli_reports_clipping_and_standardize_fixes_it(cancer_csv, tmp_path):
    raw = run_veil("train", "--dataset", str(cancer_csv / "my.csv"), "--label-column", "target",
                   "--epochs", "3", "--device", "cpu", "--out", str(tmp_path / "raw"),
                   cwd=tmp_path)
    assert raw.returncode == 0, raw.stderr
    clipped = float(re.search(r" clipped=(\S+)$", last_line(raw)).group(1))
    assert clipped > 1e-3
    warning = [l for l in raw.stderr.splitlines() if "clipped" in l]
    assert len(warning) == 1 and warning[0].startswith("veil: warning:") and \
        "--standardize" in warning[0], raw.stderr
    std = run_veil("train", "--dataset", str(cancer_csv / "my.csv"), "--label-column", "target",
                   "--standardize", "--epochs", "3", "--device", "cpu",
                   "--out", str(tmp_path / "std"), cwd=tmp_path)
    assert std.returncode == 0, std.stderr
    assert "warning" not in std.stderr
    line = last_line(std)
    assert float(re.search(r"^test_accuracy=(\S+)", line).group(1)) >= 0.9
    assert line.endswith("clipped=0.0000")
    model = veil.load_model(tmp_path / "std" / "model.npz")
    assert model.mean is not None and model.scale.shape == (30,)


def test_1_readme_snippet_runs_as_written_and_reaches_097(tmp_path):
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme[readme.index("\n## Python"):]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "load_digits" in snippet, "the snippet loads its data"
    run = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    result = eval(run.stdout.strip().splitlines()[-1])  # the printed evaluate() dict
    assert result["accuracy"] >= 0.97
    assert "SaturationWarning" not in run.stderr


# -- 2. progress: one kept line per epoch, also into a file, while training runs ----------------

def test_2_train_log_gets_each_epoch_while_training_runs(tmp_path):
    log_path = tmp_path / "log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "veil", "train", "--layers", "512-512", "--epochs", "1000",
             "--device", "cpu", "--out", str(tmp_path / "run")],
            cwd=tmp_path, stdout=log, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        lines = []
        while time.monotonic() < deadline and len(lines) < 2:
            time.sleep(0.2)
            lines = [l for l in log_path.read_text().splitlines() if l.startswith("epoch ")]
        still_running = proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    assert still_running, "training ended before the check"
    assert len(lines) >= 2, "no per-epoch line reached the log while training ran"
    assert re.match(r"epoch +1/1000  loss=\S+  acc=\S+  .*checks=\d+  \d+\.\ds$", lines[0])


def test_2_fit_verbose_keeps_a_line_per_epoch_with_validation(digits, capsys):
    trainer = veil.Trainer(mlp(64, 32, 10), device="cpu", seed=0)
    trainer.fit(digits.X_train, digits.y_train, epochs=2, verbose=1,
                validation_data=(digits.X_test, digits.y_test))
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("epoch ")]
    assert len(lines) == 2
    for k, line in enumerate(lines, 1):
        assert re.match(rf"epoch {k}/2  loss=\S+  acc=\S+  val_loss=\S+  val_acc=\S+  ", line)


# -- 3. veil predict predicts: unlabelled data in, a predictions file out -----------------------

def test_3_predict_unlabelled_csv_writes_classes_and_probabilities(cancer_csv, tmp_path):
    trained = run_veil("train", "--dataset", str(cancer_csv / "my.csv"), "--label-column",
                       "target", "--standardize", "--epochs", "5", "--device", "cpu",
                       "--out", "run", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    out = run_veil("predict", "--model", "run/model.npz", "--data", str(cancer_csv / "new.csv"),
                   "--output", "preds.csv", "--device", "cpu", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert re.match(r"^predictions=89 checks_passed=\d+ mode=private$", last_line(out))
    with open(tmp_path / "preds.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["class", "prob_benign", "prob_malignant"]
    predicted = np.array([r[0] for r in rows[1:]])
    probs = np.array([[float(p) for p in r[1:]] for r in rows[1:]])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert np.mean(predicted == np.load(cancer_csv / "new_labels.npy")) >= 0.9
    # Labelled data is scored, with the class names mapped as in training.
    scored = run_veil("predict", "--model", "run/model.npz", "--data",
                      str(cancer_csv / "new_labelled.csv"), "--mode", "verify", "--device", "cpu",
                      cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    assert float(re.match(r"^test_accuracy=(\S+) ", last_line(scored)).group(1)) >= 0.9


def test_3_predict_scores_the_models_own_test_split_without_repeating_the_seed(tmp_path):
    trained = run_veil("train", "--layers", "32", "--epochs", "3", "--seed", "7", "--device",
                       "cpu", "--out", "run", "--quiet", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    train_acc = float(re.match(r"^test_accuracy=(\S+) ", last_line(trained)).group(1))
    out = run_veil("predict", "--model", "run/model.npz", "--mode", "verify", "--device", "cpu",
                   cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert float(re.match(r"^test_accuracy=(\S+) ", last_line(out)).group(1)) == \
        pytest.approx(train_acc, abs=0.01)


# -- 4. one named line with the fix, never a traceback ------------------------------------------

def test_4_missing_sealing_key_file_is_one_line(tmp_path):
    err = one_line_error(run_veil("train", "--epochs", "1", "--sealing-key-file", "nokey",
                                  "--out", "run", cwd=tmp_path))
    assert "nokey" in err and "openssl rand -hex 32" in err


def test_4_truncated_dataset_and_model_files_are_one_line(tmp_path):
    np.savez(tmp_path / "data.npz", X=np.zeros((100, 64)), y=np.zeros(100, dtype=int))
    blob = (tmp_path / "data.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(blob[: len(blob) // 2])
    err = one_line_error(run_veil("train", "--dataset", "cut.npz", "--epochs", "1", "--out",
                                  "run", cwd=tmp_path))
    assert "cut.npz" in err
    trained = run_veil("train", "--layers", "8", "--epochs", "1", "--device", "cpu", "--out",
                       "run", "--quiet", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    blob = (tmp_path / "run" / "model.npz").read_bytes()
    (tmp_path / "cut_model.npz").write_bytes(blob[: len(blob) // 2])
    err = one_line_error(run_veil("predict", "--model", "cut_model.npz", cwd=tmp_path))
    assert "cut_model.npz" in err and "damaged" in err


# -- 5. your own data -----------------------------------------------------------------------------

def test_5_csv_dataset_with_hidden_widths_only(cancer_csv, tmp_path):
    out = run_veil("train", "--dataset", str(cancer_csv / "my.csv"), "--layers", "16",
                   "--standardize", "--epochs", "2", "--device", "cpu", "--out", "run",
                   cwd=tmp_path)  # the label column is found by its name, "target"
    assert out.returncode == 0, out.stderr
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["config"]["layers"] == [30, 16, 2]


def test_5_numpy_integer_widths_and_random_seeds():
    model = veil.Sequential([veil.Dense(np.int64(64), np.int32(10))])
    assert model.layer_specs() == [(64, 10, "identity")]
    assert type(model.layer_specs()[0][0]) is int
    a, b = (veil.Trainer(model, device="cpu", seed=None) for _ in range(2))
    assert isinstance(a.seed, int) and a.seed != b.seed
    assert not np.array_equal(a.export_weights()[0], b.export_weights()[0])


def test_5_pandas_dataframes_train(digits):
    pd = pytest.importorskip("pandas", reason="pandas is not a dependency of veil")
    model = veil.Sequential([veil.Dense(64, 10)])
    trainer = veil.Trainer(model, device="cpu", seed=0)
    history = trainer.fit(pd.DataFrame(digits.X_train), pd.Series(digits.y_train), epochs=1,
                          verbose=0)
    assert history.history["accuracy"][0] > 0.2  # chance is 0.1


# -- 6. one batch size ---------------------------------------------------------------------------

def test_6_fit_takes_the_batch_size_the_trainer_was_not_given(digits):
    chosen = veil.Trainer(mlp(64, 32, 10), device="cpu", seed=0)
    chosen.fit(digits.X_train, digits.y_train, epochs=1, batch_size=128, verbose=0)
    built = veil.Trainer(mlp(64, 32, 10), device="cpu", seed=0, batch_size=128)
    built.fit(digits.X_train, digits.y_train, epochs=1, batch_size=128, verbose=0)
    for x, y in zip(chosen.export_weights(), built.export_weights()):
        np.testing.assert_array_equal(x, y)
    # Once trained with one batch size, a larger one is refused with the reason.
    with pytest.raises(veil.ConfigError, match=r"batch_size=256 must be in \[1, 128\]"):
        chosen.fit(digits.X_train, digits.y_train, batch_size=256, verbose=0)


# -- 7. one model file; checkpoints apart; openssl keys ------------------------------------------

def test_7_model_file_round_trip_through_inference(digits, tmp_path):
    trainer = veil.Trainer(mlp(64, 32, 10), device="cpu", seed=0)
    trainer.fit(digits.X_train, digits.y_train, epochs=3, verbose=0)
    mean, scale = np.full(64, 0.25), np.full(64, 0.5)
    path = veil.save_model(tmp_path / "m.npz", trainer, mean=mean, scale=scale,
                           info={"note": "x"})
    saved = veil.load_model(path)
    assert saved.activations == ["relu", "identity"] and saved.loss == "cross_entropy"
    assert saved.info == {"note": "x"}
    for a, b in zip(saved.weights, trainer.export_weights()):
        np.testing.assert_array_equal(a, b)
    raw = digits.X_test * scale + mean  # what the model sees after its standardization
    served = veil.Inference(str(path), mode="verify", device="cpu").predict_proba(raw)
    direct = veil.Inference(trainer, mode="verify", device="cpu")
    direct = direct.predict_proba(digits.X_test)
    np.testing.assert_allclose(served, direct, atol=1e-12)
    assert not hasattr(veil.Trainer, "save"), "checkpoints are save_checkpoint, apart"
    trainer.save_checkpoint(tmp_path / "ckpt", sealing_key=veil.INSECURE_TEST_SEALING_KEY)
    with pytest.raises(veil.ConfigError, match="training checkpoint"):
        veil.load_model(tmp_path / "ckpt")


def test_7_model_file_is_what_cpp_reads(tmp_path):
    # veil::load_model (host/src/model_file.cc; tests/cpp/host/test_model_file.cc runs a
    # file written here in C++) reads uncompressed .npy arrays and the EDL's codes.
    import zipfile

    from veil import _codes

    weights = [np.zeros((5, 3)), np.zeros((4, 2))]
    path = veil.save_model(tmp_path / "m.npz", weights, activations=["sigmoid", "identity"],
                           loss="mse")
    with zipfile.ZipFile(path) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
    with np.load(path) as data:
        stored = {key: data[key] for key in data.files}
    assert stored["activation_codes"].dtype == np.dtype("<i4")
    assert list(stored["activation_codes"]) == [_codes.ACTIVATION["sigmoid"],
                                                _codes.ACTIVATION["identity"]]
    assert stored["loss_code"].shape == () and int(stored["loss_code"]) == _codes.LOSS["mse"]
    assert all(stored[f"layer_{i}"].dtype == np.dtype("<f8") for i in range(2))
    # Codes that disagree with the names would make C++ and Python run different models.
    stored["activation_codes"] = np.asarray([_codes.ACTIVATION["relu"], 0], dtype="<i4")
    np.savez(tmp_path / "altered.npz", **stored)
    with pytest.raises(veil.ConfigError, match="codes disagree"):
        veil.load_model(tmp_path / "altered.npz")


def test_7_openssl_hex_key_file_is_accepted(tmp_path):
    key = os.urandom(32)
    (tmp_path / "hex.key").write_text(key.hex() + "\n")  # what `openssl rand -hex 32` writes
    (tmp_path / "raw.key").write_bytes(key)
    assert veil.read_sealing_key(tmp_path / "hex.key") == key
    assert veil.read_sealing_key(tmp_path / "raw.key") == key
    out = run_veil("train", "--layers", "8", "--epochs", "1", "--device", "cpu", "--out", "run",
                   "--sealing-key-file", "hex.key", "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "run" / "checkpoint" / "state.sealed").exists()
    (tmp_path / "bad.key").write_text("not a key\n")
    err = one_line_error(run_veil("train", "--epochs", "1", "--sealing-key-file", "bad.key",
                                  "--out", "run2", cwd=tmp_path))
    assert "64 hex digits or 32 raw bytes" in err


# -- 8. Keras habits --------------------------------------------------------------------------------

def test_8_history_callbacks_validation_split_and_shuffle(digits, tmp_path, capsys):
    trainer = veil.Trainer(mlp(64, 32, 10), device="cpu", seed=0)
    seen = []
    stop = veil.EarlyStopping(monitor="val_accuracy", patience=0, min_delta=1.0)  # never improves
    best = veil.ModelCheckpoint(str(tmp_path / "best.npz"), monitor="val_loss",
                                save_best_only=True)
    history = trainer.fit(digits.X_train, digits.y_train, epochs=10, validation_split=0.2,
                          callbacks=[seen.append, stop, best], verbose=0)
    assert isinstance(history, veil.History) and history.epoch == [1, 2]
    assert len(history.history["loss"]) == 2 and len(history.history["val_accuracy"]) == 2
    assert [r["epoch"] for r in seen] == [1, 2] and stop.stopped_epoch == 2
    assert veil.load_model(tmp_path / "best.npz").activations == ["relu", "identity"]
    # shuffle=False: the batches are the data's own order, as train_step on each slice.
    X, y = digits.X_train[:256], digits.y_train[:256]
    ordered = veil.Trainer(mlp(64, 32, 10), device="cpu", seed=0, batch_size=64)
    ordered.fit(X, y, epochs=1, shuffle=False, verbose=0)
    by_hand = veil.Trainer(mlp(64, 32, 10), device="cpu", seed=0, batch_size=64)
    for i in range(0, 256, 64):
        by_hand.train_step(X[i:i + 64], y[i:i + 64])
    for a, b in zip(ordered.export_weights(), by_hand.export_weights()):
        np.testing.assert_array_equal(a, b)
    mlp(64, 32, 10).summary()
    out = capsys.readouterr().out
    assert "dense_0" in out and "total params: 2,410" in out


def test_8_predict_gives_classes_and_predict_proba_probabilities(digits):
    trainer = veil.Trainer(mlp(64, 32, 10), device="cpu", seed=0)
    trainer.fit(digits.X_train, digits.y_train, epochs=2, verbose=0)
    X = digits.X_test[:100]
    private = veil.Inference(trainer, mode="private", device="cpu")
    private.precompute(batches=4, verbose=0)  # two batches of 64 rows for each call below
    for model in (trainer, veil.Inference(trainer, mode="verify", device="cpu"), private):
        probs = model.predict_proba(X)
        assert probs.shape == (100, 10)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0)
        classes = model.predict(X)
        assert classes.shape == (100,) and classes.dtype.kind == "i"
        np.testing.assert_array_equal(classes, np.argmax(probs, axis=1))
    # As with scikit-learn, predictions compare with the labels directly.
    assert np.mean(trainer.predict(X) == digits.y_test[:100]) > 0.8


def test_8_package_is_typed():
    assert os.path.isfile(os.path.join(os.path.dirname(veil.__file__), "py.typed"))


# -- 9. noise ---------------------------------------------------------------------------------------

class _Liar(veil.NumpyDevice):
    def forward(self, layer, a):
        z = super().forward(layer, a)
        z[0, 0] += 1.0
        return z


def test_9_enclave_messages_go_to_logging_not_stderr(capfd, caplog):
    trainer = veil.Trainer(veil.Sequential([veil.Dense(4, 3)]), device=_Liar(), seed=0)
    with caplog.at_level("ERROR", logger="veil.enclave"):
        with pytest.raises(veil.VerificationError):
            trainer.train_step(np.ones((2, 4)), np.zeros(2, dtype=int))
    assert "[veil enclave" not in capfd.readouterr().err
    assert any("session aborted" in r.getMessage() for r in caplog.records
               if r.name == "veil.enclave")


def test_9_cpu_fallback_says_one_line_once_and_version(tmp_path):
    script = ("import veil\n"
              "for _ in range(2):\n"
              "    veil.Trainer(veil.Sequential([veil.Dense(4, 3)]), device='auto')\n")
    # No GPU visible, also on a machine that has one, so device='auto' falls back.
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("veil: no CUDA GPU ("), run.stderr
    version = run_veil("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"veil {veil.__version__}"


# -- 10. install by hand ----------------------------------------------------------------------------

def test_10_readme_says_how_to_install_by_hand():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    setup = open(os.path.join(ROOT, ".ci", "setup.sh"), encoding="utf-8").read()
    section = readme[readme.index("### Installing by hand"):]
    section = section[:section.index("\n## ")]
    packages = re.search(r"packages=\(([^)]*)\)", setup).group(1).split()
    for package in packages[:packages.index("libopenblas-dev") + 1]:
        assert package in section, f"README's manual install lacks {package}"
    assert "pip install ." in section and "veil info" in section


def test_7_onnx_export_runs_in_onnxruntime(digits, tmp_path):
    pytest.importorskip("onnx", reason="ONNX export is the optional onnx extra")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime runs the exported graph")
    from veil._inference import float_forward

    trainer = veil.Trainer(mlp(64, 32, 10), device="cpu", seed=0)
    trainer.fit(digits.X_train, digits.y_train, epochs=2, verbose=0)
    mean, scale = np.full(64, 0.25), np.full(64, 0.5)
    saved = veil.load_model(veil.save_model(tmp_path / "m.npz", trainer, mean=mean, scale=scale))
    path = veil.export_onnx(tmp_path / "m.npz", tmp_path / "m.onnx")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    raw = digits.X_test * scale + mean
    got = session.run(["probabilities"], {"X": raw.astype(np.float32)})[0]
    want = float_forward(saved.weights, saved.activations, saved.loss, saved.preprocess(raw))
    np.testing.assert_allclose(got, want, atol=1e-4)


# -- 11. honest benchmark output --------------------------------------------------------------------

def test_11_bench_reports_spread_warns_and_plots_every_row(tmp_path):
    from veil import bench

    lines = []
    result = bench.run(widths=[64, 128], batches=[8, 16], repeats=5, out=str(tmp_path),
                       echo=lines.append)
    rows = [bench.Row(**r) for r in result["rows"]]
    for row in rows:
        assert set(row.spreads) == {"insecure", "verify"} and all(
            v >= 0 for v in row.spreads.values())
    printed = "\n".join(lines)
    assert "spread" in printed and "+-" in printed
    noisy = bench.Row(**{**result["rows"][0], "spreads": {"insecure": 0.1, "verify": 0.6}})
    (warning,) = bench.spread_warnings([noisy])
    assert "width 64 batch 8" in warning and "60%" in warning and "unreliable" in warning
    fig = bench.figure(rows)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    for ax in fig.axes:
        # Every row of the table: one bar per width, (a) and (b) drawn for each.
        assert len(ax.patches) == 3 * 2
        assert [len(line.get_xdata()) for line in ax.get_lines()] == [2, 2]
        title = ax.title.get_window_extent(renderer)
        for text in ax.texts:
            assert not title.overlaps(text.get_window_extent(renderer)), text.get_text()
        assert not legend.overlaps(ax.get_window_extent(renderer))
