// Private and verify-mode inference through the C++ API (veil/inference.h):
// bit-identical modes, what the device sees, sealed slots, cheating devices.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "veil/veil.h"
#include "../cpu_backed_device.h"

namespace {

veil::Enclave& shared_enclave() {
  static veil::Enclave enclave;
  return enclave;
}

constexpr size_t kIn = 8, kHidden = 16, kOut = 4, kBatch = 5;

veil::InferenceConfig config(veil::InferenceMode mode) {
  veil::InferenceConfig c;
  c.layers = {{kIn, kHidden, veil::Activation::relu}, {kHidden, kOut, veil::Activation::identity}};
  c.mode = mode;
  return c;
}

struct Model {
  std::vector<std::vector<double>> layers;
  std::vector<const double*> pointers() const {
    std::vector<const double*> p;
    for (const auto& l : layers) p.push_back(l.data());
    return p;
  }
};

Model random_model(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.4);
  Model m;
  m.layers.resize(2);
  m.layers[0].resize((kIn + 1) * kHidden);
  m.layers[1].resize((kHidden + 1) * kOut);
  for (auto& l : m.layers)
    for (double& w : l) w = normal(rng);
  return m;
}

std::vector<double> random_batch(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> x(kBatch * kIn);
  for (double& v : x) v = u(rng);
  return x;
}

// Honest products that keep a copy of every forward input, optionally
// altering one product.
class Recorder final : public veil_test::CpuBackedDevice {
 public:
  explicit Recorder(int cheat_at = 0) : CpuBackedDevice("recorder"), cheat_at_(cheat_at) {}
  void forward(uint32_t layer, const double* a, size_t batch, double* z) override {
    const size_t rows = layer == 0 ? kIn + 1 : kHidden + 1;
    inputs.emplace_back(a, a + batch * rows);
    CpuBackedDevice::forward(layer, a, batch, z);
    if (++calls_ == cheat_at_) z[0] += 1.0;
  }

  std::vector<std::vector<double>> inputs;

 private:
  int cheat_at_;
  int calls_ = 0;
};

TEST(HostInference, PrivateIsBitIdenticalToVerifyAndTheDeviceSeesOnlyLimbs) {
  Model model = random_model(1);
  Recorder private_device, verify_device;
  veil::Inference priv(shared_enclave(), private_device, config(veil::InferenceMode::private_),
                       model.pointers());
  veil::Inference verify(shared_enclave(), verify_device, config(veil::InferenceMode::verify),
                         model.pointers());
  std::vector<double> a(kBatch * kOut), b(kBatch * kOut);
  for (uint64_t batch = 0; batch < 3; ++batch) {
    std::vector<uint8_t> sealed = priv.precompute(kBatch);
    EXPECT_EQ(sealed.size(), priv.sealed_slot_size(kBatch));
    std::vector<double> x = random_batch(10 + batch);
    priv.predict(x.data(), kBatch, a.data(), sealed.data(), sealed.size());
    verify.predict(x.data(), kBatch, b.data());
    EXPECT_EQ(a, b);
  }
  veil::InferenceStatus s = priv.status();
  EXPECT_EQ(s.batches, 3u);
  EXPECT_EQ(s.next_slot, 3u);
  EXPECT_EQ(s.checks_passed, 3u * 2 * 2);  // two limbs per layer
  EXPECT_EQ(verify.status().checks_passed, 3u * 2);
  ASSERT_EQ(private_device.inputs.size(), 3u * 2 * 2);
  for (const auto& limb : private_device.inputs)
    for (double v : limb) {
      ASSERT_EQ(v, std::floor(v));
      ASSERT_GE(v, 0.0);
      ASSERT_LT(v, 16777216.0);
    }
  // Verify mode's device saw X_q itself: the quantized inputs and the bias column 2^8.
  EXPECT_EQ(verify_device.inputs[0][kIn], 256.0);
}

TEST(HostInference, SealedSlotsAreSingleUseInOrderAndAuthenticated) {
  Model model = random_model(2);
  veil::CpuDevice device(1);
  veil::Inference priv(shared_enclave(), device, config(veil::InferenceMode::private_),
                       model.pointers());
  std::vector<uint8_t> slot0 = priv.precompute(kBatch), slot1 = priv.precompute(kBatch);
  std::vector<double> x = random_batch(3), out(kBatch * kOut);
  try {
    priv.predict(x.data(), kBatch, out.data(), slot1.data(), slot1.size());
    FAIL() << "an out-of-order slot was accepted";
  } catch (const veil::ProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find("expected slot 0, got slot 1"), std::string::npos)
        << e.what();
  }
  priv.predict(x.data(), kBatch, out.data(), slot0.data(), slot0.size());
  try {
    priv.predict(x.data(), kBatch, out.data(), slot0.data(), slot0.size());
    FAIL() << "a reused slot was accepted";
  } catch (const veil::ProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find("slot 0 was already used"), std::string::npos) << e.what();
  }
  std::vector<double> six((kBatch + 1) * kIn, 0.5), six_out((kBatch + 1) * kOut);
  try {
    priv.predict(six.data(), kBatch + 1, six_out.data(), slot1.data(), slot1.size());
    FAIL() << "a batch larger than its slot was accepted";
  } catch (const veil::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("up to 5 rows"), std::string::npos) << e.what();
  }
  slot1[40] ^= 1;
  try {
    priv.predict(x.data(), kBatch, out.data(), slot1.data(), slot1.size());
    FAIL() << "an altered slot was accepted";
  } catch (const veil::VerificationError& e) {
    EXPECT_NE(std::string(e.what()).find("layer 0, phase unseal"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(priv.status().aborted);
  EXPECT_THROW(priv.precompute(kBatch), veil::ProtocolError);
}

TEST(HostInference, CheatingDeviceIsCaughtNamingLayerAndBatch) {
  Model model = random_model(3);
  Recorder device(/*cheat_at=*/7);  // batch 2, layer 1, low limb
  veil::Inference priv(shared_enclave(), device, config(veil::InferenceMode::private_),
                       model.pointers());
  std::vector<double> x = random_batch(4), out(kBatch * kOut);
  std::vector<uint8_t> s0 = priv.precompute(kBatch), s1 = priv.precompute(kBatch);
  priv.predict(x.data(), kBatch, out.data(), s0.data(), s0.size());
  try {
    priv.predict(x.data(), kBatch, out.data(), s1.data(), s1.size());
    FAIL() << "a wrong product was accepted";
  } catch (const veil::VerificationError& e) {
    EXPECT_NE(std::string(e.what()).find("layer 1, phase forward, batch 2 (slot 1)"),
              std::string::npos)
        << e.what();
  }
}

TEST(HostInference, RefusesALayerOutsideTheBudgetAndBadInput) {
  Model model = random_model(4);
  model.layers[1][3] = 1e7;
  veil::CpuDevice device(1);
  try {
    veil::Inference priv(shared_enclave(), device, config(veil::InferenceMode::private_),
                         model.pointers());
    FAIL() << "an inexact layer was accepted";
  } catch (const veil::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("layer 1:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("frac_weights (now 10)"), std::string::npos) << e.what();
  }
  model = random_model(4);
  veil::Inference verify(shared_enclave(), device, config(veil::InferenceMode::verify),
                         model.pointers());
  std::vector<double> x = random_batch(5), out(kBatch * kOut);
  x[3] = NAN;
  EXPECT_THROW(verify.predict(x.data(), kBatch, out.data()), veil::InputError);
  x[3] = 0.5;
  EXPECT_NO_THROW(verify.predict(x.data(), kBatch, out.data()));
  EXPECT_THROW(verify.precompute(kBatch), veil::ProtocolError);
}

}  // namespace

// Private fine-tuning (docs/design.md §4.5): layer 0 frozen on the device, layer 1
// trained in the enclave; the device gets limbs of layer 0 only, the loss falls, the
// trained head comes back, and a model whose first layer would train is refused.
TEST(HostInference, FineTunesTheHeadInsideTheEnclave) {
  Model model = random_model(5);
  Recorder device;
  veil::InferenceConfig c = config(veil::InferenceMode::private_);
  c.head_layers = 1;
  c.head_lr = 0.5;
  veil::Inference tuner(shared_enclave(), device, c, model.pointers());
  const std::vector<double> x = random_batch(7);
  const std::vector<int32_t> labels = {0, 1, 2, 3, 0};
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    std::vector<uint8_t> sealed = tuner.precompute(kBatch);
    veil::HeadStep r = tuner.train_step(x.data(), labels.data(), kBatch, sealed.data(),
                                        sealed.size());
    (step == 0 ? first : last) = r.loss;
    EXPECT_EQ(r.step, static_cast<uint64_t>(step + 1));
  }
  EXPECT_LT(last, first);
  ASSERT_EQ(device.inputs.size(), 30u * 2);  // two limbs of layer 0 per step, nothing else
  const std::vector<double> head = tuner.export_head(1);
  ASSERT_EQ(head.size(), model.layers[1].size());
  EXPECT_NE(head, model.layers[1]);
  EXPECT_THROW(tuner.export_head(0), veil::InputError);  // frozen: the caller has it
  c.head_layers = 2;
  EXPECT_THROW(veil::Inference(shared_enclave(), device, c, model.pointers()), veil::ConfigError);
}
