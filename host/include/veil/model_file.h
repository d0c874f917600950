#pragma once
/**
 * @file model_file.h
 * @brief The model file Python writes (`veil.save_model`, `veil train --out DIR`'s
 * DIR/model.npz), read in C++: the layers, loss, weights and input standardization a
 * veil::Inference needs.
 */
#include <cstddef>
#include <string>
#include <vector>

#include "veil/inference.h"

namespace veil {

/** A trained model as `veil.save_model` wrote it. */
struct SavedModel {
  std::vector<LayerSpec> layers;  ///< one per layer; widths chain
  Loss loss = Loss::cross_entropy;
  /** Per layer, (inputs + 1) x outputs doubles row-major, the bias row last. */
  std::vector<std::vector<double>> weights;
  /** The standardization raw inputs get first, (x - mean) / scale per feature;
   *  both empty when the model has none. */
  std::vector<double> mean, scale;

  /** Features per input row. */
  size_t input_size() const { return layers.front().inputs; }
  /** Classes (outputs of the last layer). */
  size_t output_size() const { return layers.back().outputs; }

  /**
   * This model's layers and loss in the given mode; the fixed-point fields keep
   * InferenceConfig's defaults, which are also what `veil.Inference(path)` uses,
   * so both give bit-identical probabilities.
   */
  InferenceConfig inference_config(InferenceMode mode) const;

  /** One pointer per layer into weights, as the Inference constructor takes them. */
  std::vector<const double*> weight_pointers() const;

  /**
   * rows x input_size() raw inputs (row-major) as the network takes them:
   * standardized when the model has a standardization (exactly as Python's
   * predict does it), else a copy.
   */
  std::vector<double> standardize(const double* x, size_t rows) const;
};

/**
 * Read a model file written by `veil.save_model`: a NumPy .npz (a ZIP of .npy
 * arrays, stored uncompressed). Class names and training notes in the file are
 * not read.
 * @throws InputError naming the file and what is wrong with it: missing,
 *         truncated or damaged (CRC), compressed, not a veil model, written by a
 *         veil too old to record activation codes, or weights of the wrong shape
 *         or not finite
 */
SavedModel load_model(const std::string& path);

}  // namespace veil
