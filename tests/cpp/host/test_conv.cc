// Convolutional networks through the C++ API (docs/design.md §4.4): LayerSpec::conv2d
// trains with every product checked, a cheat next to the pooling is caught naming
// layer, phase and step, bad geometry is refused naming the field, and private
// inference of the trained CNN equals verify-mode inference bit for bit.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "veil/veil.h"
#include "../cpu_backed_device.h"

namespace {

constexpr size_t kSide = 6, kPixels = kSide * kSide, kBatch = 16;

veil::Enclave& shared_enclave() {
  static veil::Enclave enclave;
  return enclave;
}

// conv 1 -> 4 channels, 3x3, padding 1, ReLU, 2x2 max pooling; then dense 4*3*3 -> 2.
std::vector<veil::LayerSpec> cnn() {
  return {veil::LayerSpec::conv2d(1, 4, kSide, kSide, 3, 1, 1, veil::Activation::relu,
                                  veil::Pool::max, 2),
          {4 * 3 * 3, 2, veil::Activation::identity}};
}

veil::TrainConfig cnn_config() {
  veil::TrainConfig c;
  c.layers = cnn();
  c.lr_exp = 2;
  c.max_batch = kBatch;
  c.seed = 11;
  return c;
}

// 6x6 images whose left or right half is brighter: the label says which.
void make_images(std::mt19937_64& rng, std::vector<double>& x, std::vector<int32_t>& y) {
  std::uniform_real_distribution<double> u(0.0, 0.5);
  x.resize(kBatch * kPixels);
  y.resize(kBatch);
  for (size_t i = 0; i < kBatch; ++i) {
    y[i] = static_cast<int32_t>(rng() % 2);
    for (size_t p = 0; p < kPixels; ++p)
      x[i * kPixels + p] = u(rng) + ((p % kSide < kSide / 2) == (y[i] == 0) ? 0.5 : 0.0);
  }
}

TEST(HostConv, LearnsToyImagesWithEveryProductChecked) {
  veil::CpuDevice device(1);
  veil::Trainer trainer(shared_enclave(), device, cnn_config());
  std::mt19937_64 rng(1);
  std::vector<double> x;
  std::vector<int32_t> y;
  uint32_t correct_late = 0;
  for (int step = 0; step < 150; ++step) {
    make_images(rng, x, y);
    veil::StepResult r = trainer.step(x.data(), y.data(), kBatch);
    if (step >= 100) correct_late += r.correct;
  }
  EXPECT_GT(correct_late / (50.0 * kBatch), 0.9);
  EXPECT_EQ(trainer.stats().checks_passed, 150u * 3);  // 2 forward + 1 backward per step
  EXPECT_EQ(trainer.export_weights(0).size(), (9u + 1) * 4);  // (k^2 C_in + 1) x C_out
  EXPECT_EQ(cnn()[0].input_features(), kPixels);
}

// Honest products, except one element of the dense layer's backward product: the
// gradient that flows back through the flatten and the max pooling.
class CheatingBackward final : public veil_test::CpuBackedDevice {
 public:
  CheatingBackward() : CpuBackedDevice("cheat") {}
  void backward(uint32_t l, const double* dz, size_t b, double* da) override {
    CpuBackedDevice::backward(l, dz, b, da);
    if (++calls_ == 2) da[3] += 1.0;
  }

 private:
  int calls_ = 0;
};

TEST(HostConv, CheatNextToThePoolingIsCaught) {
  CheatingBackward device;
  veil::Trainer trainer(shared_enclave(), device, cnn_config());
  std::mt19937_64 rng(2);
  std::vector<double> x;
  std::vector<int32_t> y;
  make_images(rng, x, y);
  trainer.step(x.data(), y.data(), kBatch);
  try {
    trainer.step(x.data(), y.data(), kBatch);
    FAIL() << "the cheat passed";
  } catch (const veil::VerificationError& e) {
    EXPECT_NE(std::string(e.what()).find("layer 1, phase backward, step 2"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(trainer.stats().aborted);
}

TEST(HostConv, BadGeometryIsRefusedNamingTheField) {
  veil::CpuDevice device;
  veil::TrainConfig c = cnn_config();
  c.layers[0].padding = 3;
  try {
    veil::Trainer trainer(shared_enclave(), device, c);
    FAIL() << "padding 3 of a 3x3 kernel was accepted";
  } catch (const veil::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("layer 0: kernel=3 stride=1 padding=3"),
              std::string::npos) << e.what();
  }
  c = cnn_config();
  c.layers[1].inputs = 35;
  EXPECT_THROW(veil::Trainer(shared_enclave(), device, c), veil::InputError);
}

TEST(HostConv, PrivateInferenceOfACnnEqualsVerifyMode) {
  veil::CpuDevice train_device;
  veil::Trainer trainer(shared_enclave(), train_device, cnn_config());
  std::mt19937_64 rng(3);
  std::vector<double> x;
  std::vector<int32_t> y;
  for (int step = 0; step < 20; ++step) {
    make_images(rng, x, y);
    trainer.step(x.data(), y.data(), kBatch);
  }
  std::vector<std::vector<double>> weights = {trainer.export_weights(0),
                                              trainer.export_weights(1)};
  std::vector<const double*> pointers = {weights[0].data(), weights[1].data()};
  veil::InferenceConfig config;
  config.layers = cnn();
  veil::CpuDevice private_device, verify_device;
  veil::Inference privately(shared_enclave(), private_device, config, pointers);
  config.mode = veil::InferenceMode::verify;
  veil::Inference verified(shared_enclave(), verify_device, config, pointers);
  make_images(rng, x, y);
  std::vector<uint8_t> slot = privately.precompute(kBatch);
  std::vector<double> p_private(kBatch * 2), p_verify(kBatch * 2);
  privately.predict(x.data(), kBatch, p_private.data(), slot.data(), slot.size());
  verified.predict(x.data(), kBatch, p_verify.data());
  EXPECT_EQ(p_private, p_verify);
  EXPECT_EQ(privately.status().checks_passed, 2u * 2);  // two limb products per layer
}

}  // namespace
