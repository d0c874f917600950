"""Writes the model files that test_model_file.cc reads with veil::load_model.

    write_model_files.py OUT_DIR

With veil.save_model: model.npz (cross-entropy, every activation, an input
standardization) and mse.npz (MSE, none); beside each, NAME.inputs.f64 (raw inputs)
and NAME.probs.f64 (what veil.Inference(NAME.npz, mode="verify").predict_proba gives
for them), row-major little-endian float64. Then damaged copies of model.npz, one per
way a file can be wrong, named after it. write_model_files.cmake runs this with the
veil package of the build tree under test.
"""
import os
import sys

import numpy as np

import veil


def write_model(out_dir, name, widths, activations, loss, standardize, rng):
    weights = [rng.normal(0.0, 1.0 / np.sqrt(n), (n + 1, m))
               for n, m in zip(widths[:-1], widths[1:])]
    features = widths[0]
    mean = rng.normal(0.0, 3.0, features) if standardize else None
    scale = rng.uniform(0.5, 4.0, features) if standardize else None
    path = veil.save_model(os.path.join(out_dir, name + ".npz"), weights,
                           activations=activations, loss=loss, mean=mean, scale=scale)
    # 150 rows: more than one batch of 64, the last one partial.
    raw = rng.normal(0.0, 1.0, (150, features))
    if standardize:
        raw = raw * scale + mean
    probs = veil.Inference(path, mode="verify", device="cpu").predict_proba(raw)
    raw.astype("<f8").tofile(os.path.join(out_dir, name + ".inputs.f64"))
    probs.astype("<f8").tofile(os.path.join(out_dir, name + ".probs.f64"))
    return path


def write_damaged(out_dir, model_path):
    with np.load(model_path) as data:
        good = {key: data[key] for key in data.files}

    def variant(name, saver=np.savez, **changes):
        arrays = dict(good)
        for key, value in changes.items():
            if value is None:
                del arrays[key]
            else:
                arrays[key] = value
        saver(os.path.join(out_dir, name + ".npz"), **arrays)

    variant("compressed", saver=np.savez_compressed)
    variant("fortran", layer_1=np.asfortranarray(good["layer_1"]))
    variant("float32", layer_0=good["layer_0"].astype(np.float32))
    not_finite = good["layer_2"].copy()
    not_finite[1, 2] = np.nan
    variant("not_finite", layer_2=not_finite)
    codes = good["activation_codes"].copy()
    codes[1] = 99
    variant("unknown_activation", activation_codes=codes)
    variant("older", activation_codes=None, loss_code=None)
    variant("broken_chain", layer_1=good["layer_1"][:-1])
    variant("gap_in_layers", layer_7=good["layer_0"])
    variant("mean_only", scale=None)
    variant("other_format", format=np.asarray("veil-model-9"))
    # What Python writes for a CNN: veil::load_model reads dense models only.
    variant("convolutional", layer_geometry=np.zeros((5, 9), dtype="<i4"),
            input_shape=np.asarray([3, 2, 2], dtype="<i4"))


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    print(f"veil from {os.path.dirname(veil.__file__)}")
    rng = np.random.default_rng(18)
    model = write_model(out_dir, "model", [12, 16, 16, 12, 8, 5],
                        ["relu", "sigmoid", "arctan", "softplus", "identity"],
                        "cross_entropy", True, rng)
    write_model(out_dir, "mse", [6, 10, 3], ["relu", "sigmoid"], "mse", False, rng)
    write_damaged(out_dir, model)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
