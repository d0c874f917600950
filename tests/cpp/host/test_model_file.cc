// veil::load_model (veil/model_file.h) reads the model file Python's veil.save_model
// writes. write_model_files.py writes the files at test time with this build's veil,
// with what veil.Inference predicts from them; C++ must predict the same bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "veil/veil.h"

namespace {

veil::Enclave& shared_enclave() {
  static veil::Enclave enclave;
  return enclave;
}

std::string model_dir() {
  const char* dir = std::getenv("VEIL_TEST_MODEL_DIR");
  return dir ? dir : "";
}

#define NEED_MODEL_FILES()                                                               \
  if (model_dir().empty())                                                               \
  GTEST_SKIP() << "VEIL_TEST_MODEL_DIR is not set: this build has no Python extension " \
                  "to write model files with (CTest sets it when it has)"

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot open " << path;
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  ASSERT_TRUE(out) << "cannot write " << path;
}

// A file of little-endian float64, as numpy's tofile writes "<f8".
std::vector<double> read_doubles(const std::string& path) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  std::vector<double> out(bytes.size() / 8);
  for (size_t k = 0; k < out.size(); ++k) {
    uint64_t bits = 0;
    for (int b = 7; b >= 0; --b) bits = bits << 8 | bytes[8 * k + b];
    std::memcpy(&out[k], &bits, sizeof bits);
  }
  return out;
}

// What load_model says about path: the InputError's message, or "" when it loads.
std::string load_error(const std::string& path) {
  try {
    veil::load_model(path);
  } catch (const veil::InputError& e) {
    return e.what();
  }
  return "";
}

// Runs the model on raw inputs as Python's Inference.predict_proba does: its
// standardization first, then batches of 64 rows, one sealed slot each in private mode.
std::vector<double> predict(const veil::SavedModel& model, veil::InferenceMode mode,
                            const std::vector<double>& raw) {
  const size_t rows = raw.size() / model.input_size(), batch = 64;
  const std::vector<double> x = model.standardize(raw.data(), rows);
  veil::CpuDevice device;
  veil::Inference inference(shared_enclave(), device, model.inference_config(mode),
                            model.weight_pointers());
  std::vector<double> out(rows * model.output_size());
  for (size_t start = 0; start < rows; start += batch) {
    const size_t n = std::min(batch, rows - start);
    const double* in = x.data() + start * model.input_size();
    double* probs = out.data() + start * model.output_size();
    if (mode == veil::InferenceMode::private_) {
      const std::vector<uint8_t> sealed = inference.precompute(static_cast<uint32_t>(n));
      inference.predict(in, n, probs, sealed.data(), sealed.size());
    } else {
      inference.predict(in, n, probs);
    }
  }
  return out;
}

void expect_same_bits(const std::vector<double>& got, const std::vector<double>& want,
                      const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t k = 0; k < got.size(); ++k)
    ASSERT_EQ(std::memcmp(&got[k], &want[k], sizeof(double)), 0)
        << what << ": element " << k << " is " << got[k] << " in C++, " << want[k]
        << " in Python";
}

TEST(ModelFile, PythonModelHasItsLayersLossAndStandardization) {
  NEED_MODEL_FILES();
  const veil::SavedModel m = veil::load_model(model_dir() + "/model.npz");
  const uint32_t widths[] = {12, 16, 16, 12, 8, 5};
  const veil::Activation activations[] = {veil::Activation::relu, veil::Activation::sigmoid,
                                          veil::Activation::arctan, veil::Activation::softplus,
                                          veil::Activation::identity};
  ASSERT_EQ(m.layers.size(), 5u);
  for (size_t l = 0; l < 5; ++l) {
    EXPECT_EQ(m.layers[l].inputs, widths[l]);
    EXPECT_EQ(m.layers[l].outputs, widths[l + 1]);
    EXPECT_EQ(m.layers[l].activation, activations[l]) << "layer " << l;
    EXPECT_EQ(m.weights[l].size(), (widths[l] + 1u) * widths[l + 1]);
  }
  EXPECT_EQ(m.loss, veil::Loss::cross_entropy);
  EXPECT_EQ(m.mean.size(), 12u);
  EXPECT_EQ(m.scale.size(), 12u);

  const veil::SavedModel mse = veil::load_model(model_dir() + "/mse.npz");
  EXPECT_EQ(mse.loss, veil::Loss::mse);
  EXPECT_TRUE(mse.mean.empty() && mse.scale.empty());
  ASSERT_EQ(mse.layers.size(), 2u);
  EXPECT_EQ(mse.layers[1].activation, veil::Activation::sigmoid);
}

TEST(ModelFile, CppPredictsWhatPythonPredictsBitForBit) {
  NEED_MODEL_FILES();
  for (const std::string name : {"model", "mse"}) {
    const std::string base = model_dir() + "/" + name;
    const veil::SavedModel m = veil::load_model(base + ".npz");
    const std::vector<double> raw = read_doubles(base + ".inputs.f64");
    const std::vector<double> want = read_doubles(base + ".probs.f64");
    ASSERT_EQ(raw.size(), 150 * m.input_size()) << name;
    expect_same_bits(predict(m, veil::InferenceMode::verify, raw), want, name + " verify");
    expect_same_bits(predict(m, veil::InferenceMode::private_, raw), want, name + " private");
  }
}

TEST(ModelFile, EachWayAFileCanBeWrongIsANamedInputError) {
  NEED_MODEL_FILES();
  const struct {
    const char* file;
    const char* says;
  } cases[] = {
      {"compressed.npz", "is compressed (ZIP method 8)"},
      {"fortran.npz", "'layer_1' has a .npy header with an array in Fortran order"},
      {"float32.npz", "dtype '<f4'"},
      {"not_finite.npz", "'layer_2' holds a non-finite value at index 14"},
      {"unknown_activation.npz", "layer_1 has an unknown activation code 99"},
      {"older.npz", "no activation_codes and loss_code (an older veil wrote it)"},
      {"broken_chain.npz", "layer_1 takes 15 inputs but layer_0 gives 16"},
      {"gap_in_layers.npz", "'layer_7.npy' is not one of layer_0 to layer_4"},
      {"mean_only.npz", "one of mean and scale without the other"},
      {"other_format.npz", "unknown model format 'veil-model-9'"},
      {"convolutional.npz", "a convolutional model (it has layer_geometry)"},
  };
  for (const auto& c : cases) {
    const std::string path = model_dir() + "/" + c.file;
    const std::string message = load_error(path);
    EXPECT_NE(message.find(c.says), std::string::npos) << c.file << ": " << message;
    EXPECT_NE(message.find(path), std::string::npos) << "the message names the file: " << message;
    EXPECT_NE(message.find("re-save the model with veil.save_model"), std::string::npos)
        << message;
  }
  EXPECT_NE(load_error(model_dir() + "/absent.npz").find("cannot open"), std::string::npos);
  EXPECT_NE(load_error(model_dir()).find("is a directory"), std::string::npos);
}

TEST(ModelFile, EveryTruncationIsANamedInputError) {
  NEED_MODEL_FILES();
  const std::vector<uint8_t> bytes = read_bytes(model_dir() + "/model.npz");
  ASSERT_GT(bytes.size(), 1000u);
  const std::string path = model_dir() + "/truncated.npz";
  for (size_t size = 0; size < bytes.size(); ++size) {
    write_bytes(path, bytes.data(), size);
    const std::string message = load_error(path);
    ASSERT_NE(message.find("re-save the model with veil.save_model"), std::string::npos)
        << "cut to " << size << " of " << bytes.size() << " bytes: " << message;
  }
}

TEST(ModelFile, AnAlteredByteFailsToLoadOrChangesNoWeight) {
  NEED_MODEL_FILES();
  const std::vector<uint8_t> bytes = read_bytes(model_dir() + "/model.npz");
  const veil::SavedModel good = veil::load_model(model_dir() + "/model.npz");
  const std::string path = model_dir() + "/altered.npz";
  size_t refused = 0;
  for (size_t at = 0; at < bytes.size(); ++at) {
    std::vector<uint8_t> altered = bytes;
    altered[at] ^= 0x5A;
    write_bytes(path, altered.data(), altered.size());
    try {
      const veil::SavedModel m = veil::load_model(path);
      // Only bytes nothing reads (ZIP timestamps, versions) may change without notice.
      ASSERT_EQ(m.weights, good.weights) << "byte " << at;
      ASSERT_EQ(m.mean, good.mean) << "byte " << at;
      ASSERT_EQ(m.scale, good.scale) << "byte " << at;
      ASSERT_EQ(m.loss, good.loss) << "byte " << at;
      for (size_t l = 0; l < m.layers.size(); ++l)
        ASSERT_EQ(m.layers[l].activation, good.layers[l].activation) << "byte " << at;
    } catch (const veil::InputError&) {
      ++refused;
    }
  }
  // Every byte of an array is under its CRC-32, and the arrays are most of the file.
  EXPECT_GT(refused, bytes.size() * 3 / 4);
}

}  // namespace
