// The C++ API end to end: enclave loading, sessions, the CPU device and
// verify-mode training, including a C++ device that cheats.
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

veil::TrainConfig small_config() {
  veil::TrainConfig c;
  c.layers = {{8, 16, veil::Activation::relu}, {16, 4, veil::Activation::identity}};
  c.lr_exp = 3;
  c.max_batch = 16;
  c.seed = 7;
  return c;
}

// A separable toy problem: the label is the argmax of the first four features.
void make_batch(std::mt19937_64& rng, size_t batch, std::vector<double>& x,
                std::vector<int32_t>& y) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  x.resize(batch * 8);
  y.resize(batch);
  for (size_t i = 0; i < batch; ++i) {
    int best = 0;
    for (int j = 0; j < 8; ++j) {
      x[i * 8 + j] = u(rng);
      if (j < 4 && x[i * 8 + j] > x[i * 8 + best]) best = j;
    }
    y[i] = best;
  }
}

TEST(HostEnclave, ReportsVersionBackendAndFeatures) {
  veil::EnclaveInfo info = shared_enclave().info();
  EXPECT_EQ(info.version, veil::version());
  EXPECT_EQ(info.backend, veil::Enclave::backend());
  EXPECT_NE(info.features & 1u, 0u) << "verify training";
  EXPECT_GE(info.max_sessions, 1u);
}

TEST(HostEnclave, ReleaseBuildsAreNotDebugEnclaves) {
  // A debug enclave's memory is readable by the host on SGX: never by default.
  EXPECT_FALSE(shared_enclave().info().debug);
  try {
    veil::Enclave debug_enclave("", /*debug=*/true);
    ADD_FAILURE() << "a release image loaded as a debug enclave";
  } catch (const veil::EnclaveError& e) {
    EXPECT_NE(std::string(e.what()).find("VEIL_ENCLAVE_DEBUG"), std::string::npos) << e.what();
  }
}

TEST(HostEnclave, MissingImageIsAnEnclaveError) {
  EXPECT_THROW(veil::Enclave("/nonexistent/libveil_enclave.so"), veil::EnclaveError);
}

TEST(HostCpuDevice, ProductsOfIntegersAreExact) {
  veil::CpuDevice device(1);
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int64_t> big(-(int64_t{1} << 30), int64_t{1} << 30);
  std::uniform_int_distribution<int64_t> small(-(1 << 12), 1 << 12);
  const size_t rows = 33, cols = 17, batch = 9;
  std::vector<double> m(rows * cols), a(batch * rows), z(batch * cols);
  for (double& v : m) v = static_cast<double>(big(rng));
  for (double& v : a) v = static_cast<double>(small(rng));
  device.upload(0, m.data(), rows, cols);
  device.forward(0, a.data(), batch, z.data());
  for (size_t i = 0; i < batch; ++i)
    for (size_t j = 0; j < cols; ++j) {
      __int128 exact = 0;
      for (size_t k = 0; k < rows; ++k)
        exact += static_cast<__int128>(a[i * rows + k]) * static_cast<int64_t>(m[k * cols + j]);
      ASSERT_EQ(z[i * cols + j], static_cast<double>(static_cast<int64_t>(exact)));
    }
  device.scale(0);
  std::vector<double> back(rows * cols);
  device.download(0, back.data());
  EXPECT_EQ(back[5], 2 * m[5]);
  EXPECT_THROW(device.forward(3, a.data(), batch, z.data()), std::invalid_argument);
}

TEST(HostTrainer, LearnsAToyProblemWithEveryProductChecked) {
  veil::CpuDevice device(1);
  veil::Trainer trainer(shared_enclave(), device, small_config());
  std::mt19937_64 rng(3);
  std::vector<double> x;
  std::vector<int32_t> y;
  uint32_t correct_late = 0;
  for (int step = 0; step < 400; ++step) {
    make_batch(rng, 16, x, y);
    veil::StepResult r = trainer.step(x.data(), y.data(), 16);
    if (step >= 300) correct_late += r.correct;
  }
  EXPECT_GT(correct_late / (100.0 * 16), 0.8);
  veil::SessionStats stats = trainer.stats();
  EXPECT_EQ(stats.step, 400u);
  EXPECT_EQ(stats.checks_passed, 400u * 3);  // 2 forward + 1 backward per step
  EXPECT_FALSE(stats.aborted);
  veil::Timing t = trainer.timing();
  EXPECT_GT(t.total_seconds, 0);
  EXPECT_GE(t.enclave_seconds(), 0);
  std::vector<double> w = trainer.export_weights(1);
  EXPECT_EQ(w.size(), 17u * 4u);
}

// A checkpoint holds the weights the enclave checked; restoring them goes on exactly.
TEST(HostTrainer, CheckpointAndRestoreContinueBitIdentically) {
  const std::vector<uint8_t> key(32, 7);
  veil::CpuDevice straight_device, first_device, resumed_device;
  veil::Trainer straight(shared_enclave(), straight_device, small_config());
  veil::Trainer first(shared_enclave(), first_device, small_config());
  std::mt19937_64 rng(9);
  std::vector<std::vector<double>> xs(6);
  std::vector<std::vector<int32_t>> ys(6);
  for (int i = 0; i < 6; ++i) make_batch(rng, 16, xs[i], ys[i]);
  for (int i = 0; i < 6; ++i) straight.step(xs[i].data(), ys[i].data(), 16);
  for (int i = 0; i < 3; ++i) first.step(xs[i].data(), ys[i].data(), 16);
  veil::Checkpoint c = first.checkpoint(key);
  ASSERT_EQ(c.weights.size(), 2u);
  EXPECT_EQ(c.weights[1].size(), 17u * 4u);
  std::unique_ptr<veil::Trainer> resumed = veil::Trainer::restore(
      shared_enclave(), resumed_device, small_config(), c.sealed, c.weights, key);
  for (int i = 3; i < 6; ++i) resumed->step(xs[i].data(), ys[i].data(), 16);
  EXPECT_EQ(resumed->stats().step, 6u);
  for (uint32_t l = 0; l < 2; ++l) EXPECT_EQ(resumed->export_weights(l), straight.export_weights(l));
  // Weights altered while stored are refused by the restored fingerprints.
  c.weights[0][5] += 1;
  veil::CpuDevice other_device;
  EXPECT_THROW(veil::Trainer::restore(shared_enclave(), other_device, small_config(), c.sealed,
                                      c.weights, key),
               veil::VerificationError);
}

// Honest products, except one element of one forward product.
class CheatingDevice final : public veil_test::CpuBackedDevice {
 public:
  explicit CheatingDevice(int cheat_call) : CpuBackedDevice("cheat"), cheat_call_(cheat_call) {}
  void forward(uint32_t l, const double* a, size_t b, double* z) override {
    CpuBackedDevice::forward(l, a, b, z);
    if (++calls_ == cheat_call_) z[0] += 1.0;
  }

 private:
  int cheat_call_;
  int calls_ = 0;
};

TEST(HostTrainer, CheatingDeviceAbortsTheSession) {
  CheatingDevice device(/*cheat_call=*/6);  // step 3, layer 1 (two forwards per step)
  veil::Trainer trainer(shared_enclave(), device, small_config());
  std::mt19937_64 rng(5);
  std::vector<double> x;
  std::vector<int32_t> y;
  make_batch(rng, 16, x, y);
  trainer.step(x.data(), y.data(), 16);
  trainer.step(x.data(), y.data(), 16);
  try {
    trainer.step(x.data(), y.data(), 16);
    FAIL() << "the cheat passed";
  } catch (const veil::VerificationError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("layer 1"), std::string::npos) << what;
    EXPECT_NE(what.find("phase forward"), std::string::npos) << what;
    EXPECT_NE(what.find("step 3"), std::string::npos) << what;
  }
  EXPECT_TRUE(trainer.stats().aborted);
  EXPECT_THROW(trainer.step(x.data(), y.data(), 16), veil::ProtocolError);
  EXPECT_THROW(trainer.export_weights(0), veil::ProtocolError);
}

TEST(HostTrainer, RefusesBadConfigurationsAndInputs) {
  veil::CpuDevice device(1);
  veil::TrainConfig c = small_config();
  c.layers[1].inputs = 15;
  EXPECT_THROW(veil::Trainer(shared_enclave(), device, c), veil::InputError);
  c = small_config();
  c.lr_exp = 30;
  c.frac_act = 20;
  c.frac_grad = 24;
  c.weight_max = 1e6;
  c.act_clip = 1e6;
  try {
    veil::Trainer t(shared_enclave(), device, c);
    FAIL() << "an overflowing configuration was accepted";
  } catch (const veil::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("layer 0"), std::string::npos) << e.what();
  }
  veil::Trainer trainer(shared_enclave(), device, small_config());
  std::vector<double> x(17 * 8, 0.5);
  std::vector<int32_t> y(17, 0);
  EXPECT_THROW(trainer.step(x.data(), y.data(), 17), veil::InputError);  // > max_batch
  y[2] = 4;
  EXPECT_THROW(trainer.step(x.data(), y.data(), 16), veil::InputError);  // label out of range
  y[2] = 0;
  EXPECT_NO_THROW(trainer.step(x.data(), y.data(), 16));
}

}  // namespace
