// Threads lent to the enclave (veil::Session::use_threads, docs/design.md §5):
// results, checks and error reports are the same for any thread count, and a
// host that rewrites a result while the enclave reads it gets either a result
// consistent with what was checked or an abort naming layer, phase and step.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "veil/veil.h"
#include "../cpu_backed_device.h"

namespace {

constexpr size_t kBatch = 128;
constexpr size_t kInputs = 64;
constexpr uint32_t kClasses = 10;

veil::Enclave& shared_enclave() {
  static veil::Enclave enclave;
  return enclave;
}

// Wide enough that every pass has several row blocks (math/parallel.h).
veil::TrainConfig wide_config() {
  veil::TrainConfig c;
  c.layers = {{kInputs, 512, veil::Activation::relu},
              {512, 512, veil::Activation::relu},
              {512, kClasses, veil::Activation::identity}};
  c.lr_exp = 4;
  c.max_batch = kBatch;
  c.seed = 11;
  return c;
}

struct Batch {
  std::vector<double> x;
  std::vector<int32_t> y;
};

Batch batch(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n(0.0, 1.0);
  Batch b{std::vector<double>(kBatch * kInputs), std::vector<int32_t>(kBatch)};
  for (double& v : b.x) v = n(rng);
  for (size_t i = 0; i < kBatch; ++i) b.y[i] = static_cast<int32_t>(rng() % kClasses);
  return b;
}

// What a run produced: every step's loss, then the predictions and the weights.
struct Outcome {
  std::vector<double> losses, predictions;
  std::vector<std::vector<double>> weights;
  std::string error;  // the VerificationError's message, if one ended the run
};

Outcome train(veil::Device& device, unsigned threads, int steps = 4) {
  veil::Trainer trainer(shared_enclave(), device, wide_config());
  trainer.use_threads(threads);
  EXPECT_EQ(trainer.stats().threads, threads);
  Outcome out;
  try {
    for (int s = 0; s < steps; ++s) {
      const Batch b = batch(100 + s);
      out.losses.push_back(trainer.step(b.x.data(), b.y.data(), kBatch).loss);
    }
  } catch (const veil::VerificationError& e) {
    out.error = e.what();
    return out;
  }
  const Batch b = batch(999);
  out.predictions.resize(kBatch * kClasses);
  trainer.predict(b.x.data(), kBatch, out.predictions.data());
  for (uint32_t l = 0; l < 3; ++l) out.weights.push_back(trainer.export_weights(l));
  return out;
}

TEST(HostThreads, TrainingIsBitIdenticalForAnyThreadCount) {
  veil_test::CpuBackedDevice device("cpu");
  const Outcome one = train(device, 1);
  ASSERT_TRUE(one.error.empty()) << one.error;
  for (unsigned threads : {2u, 3u}) {
    veil_test::CpuBackedDevice other("cpu");
    const Outcome many = train(other, threads);
    ASSERT_TRUE(many.error.empty()) << many.error;
    EXPECT_EQ(many.losses, one.losses) << threads << " threads";
    EXPECT_EQ(many.predictions, one.predictions) << threads << " threads";
    EXPECT_EQ(many.weights, one.weights) << threads << " threads";
  }
}

// Changes one element in a late row of one product: the first failing row the
// error names is the same whichever thread checked its block.
class OneLie final : public veil_test::CpuBackedDevice {
 public:
  explicit OneLie(bool backward) : CpuBackedDevice("lie"), backward_(backward) {}
  void forward(uint32_t l, const double* a, size_t b, double* z) override {
    CpuBackedDevice::forward(l, a, b, z);
    if (!backward_ && ++calls_ == 5) {  // step 2, layer 1
      z[100 * 512 + 7] += 1.0;
      z[120 * 512 + 9] = 0.5;  // a range fault after the mismatch: reported first
    }
  }
  void backward(uint32_t l, const double* dz, size_t b, double* da) override {
    CpuBackedDevice::backward(l, dz, b, da);
    if (backward_ && ++calls_ == 3) da[90 * 513 + 3] -= 2.0;  // step 2, layer 2
  }

 private:
  bool backward_;
  int calls_ = 0;
};

TEST(HostThreads, ErrorReportsAreTheSameForAnyThreadCount) {
  for (bool backward : {false, true}) {
    std::vector<std::string> errors;
    for (unsigned threads : {1u, 2u, 3u}) {
      OneLie device(backward);
      errors.push_back(train(device, threads).error);
    }
    ASSERT_FALSE(errors[0].empty());
    EXPECT_NE(errors[0].find(backward ? "row 90" : "row 120"), std::string::npos) << errors[0];
    EXPECT_NE(errors[0].find("step 2"), std::string::npos) << errors[0];
    EXPECT_EQ(errors[1], errors[0]);
    EXPECT_EQ(errors[2], errors[0]);
  }
}

// Returns honest products, then keeps rewriting one row of the result it wrote
// (memory the enclave lent it) from another thread while the enclave reads it:
// between the honest value and a lie, or (lie = false) the honest value again.
class RacingHost final : public veil_test::CpuBackedDevice {
 public:
  explicit RacingHost(bool lie) : CpuBackedDevice("race"), lie_(lie) {}
  ~RacingHost() override { stop(); }
  void forward(uint32_t l, const double* a, size_t b, double* z) override {
    stop();
    CpuBackedDevice::forward(l, a, b, z);
    if (l == 1) race(z + (b - 16) * 512, 16 * 512);  // the last 16 rows, read last
  }
  void backward(uint32_t l, const double* dz, size_t b, double* da) override {
    stop();
    CpuBackedDevice::backward(l, dz, b, da);
    if (l == 1) race(da + (b - 16) * 65, 16 * 65);
  }
  void update(uint32_t l, const double* a, const double* dz, size_t b) override {
    stop();
    CpuBackedDevice::update(l, a, dz, b);
  }
  void stop() {
    running_ = false;
    if (racer_.joinable()) racer_.join();
  }

 private:
  void race(double* result, size_t count) {
    std::vector<double> honest(result, result + count);
    running_ = true;
    started_ = false;
    racer_ = std::thread([this, result, honest] {
      volatile double* shared = result;
      for (unsigned flip = 0; running_; ++flip) {
        for (size_t j = 0; j < honest.size(); ++j)
          shared[j] = honest[j] + (lie_ && (flip & 1) ? 1.0 : 0.0);
        started_ = true;
      }
    });
    while (!started_) std::this_thread::yield();  // racing before the enclave reads
  }
  std::atomic<bool> started_{false};
  bool lie_;
  std::atomic<bool> running_{false};
  std::thread racer_;
};

TEST(HostThreads, AHostRewritingAResultWhileItIsReadGetsNoOtherValueAccepted) {
  veil_test::CpuBackedDevice honest_device("cpu");
  const Outcome honest = train(honest_device, 2, 6);
  ASSERT_TRUE(honest.error.empty());
  int aborted = 0;
  for (int trial = 0; trial < 4; ++trial) {
    RacingHost racer(/*lie=*/true);
    const Outcome raced = train(racer, 2, 6);
    racer.stop();
    if (raced.error.empty()) {
      // Every value it read was honest: then everything is the honest run's.
      EXPECT_EQ(raced.losses, honest.losses);
      EXPECT_EQ(raced.weights, honest.weights);
      continue;
    }
    ++aborted;
    EXPECT_NE(raced.error.find("layer 1"), std::string::npos) << raced.error;
    EXPECT_NE(raced.error.find("phase "), std::string::npos) << raced.error;
    EXPECT_NE(raced.error.find("step "), std::string::npos) << raced.error;
  }
  std::printf("racing host: %d of 4 runs aborted, the others read only honest values\n", aborted);
  // Rewriting a result with the values it already holds changes nothing.
  RacingHost benign(/*lie=*/false);
  const Outcome same = train(benign, 2, 6);
  benign.stop();
  ASSERT_TRUE(same.error.empty()) << same.error;
  EXPECT_EQ(same.losses, honest.losses);
  EXPECT_EQ(same.weights, honest.weights);
  EXPECT_EQ(same.predictions, honest.predictions);
}

TEST(HostThreads, LentThreadsLeaveRoomForTheCalls) {
  veil_test::CpuBackedDevice da("a"), db("b"), dc("c");
  veil::Trainer a(shared_enclave(), da, wide_config()), b(shared_enclave(), db, wide_config()),
      c(shared_enclave(), dc, wide_config());
  a.use_threads(16);
  b.use_threads(16);
  c.use_threads(4);
  EXPECT_EQ(a.stats().threads, 16u);  // 15 lent: a session's most
  EXPECT_EQ(b.stats().threads, 10u);  // 9 more: 24 lent in the enclave
  EXPECT_EQ(c.stats().threads, 1u);   // none left to lend; c runs on its caller
  const Batch x = batch(7);
  const double loss = a.step(x.x.data(), x.y.data(), kBatch).loss;
  EXPECT_EQ(b.step(x.x.data(), x.y.data(), kBatch).loss, loss);
  EXPECT_EQ(c.step(x.x.data(), x.y.data(), kBatch).loss, loss);
}

// A session destroyed inside another session's ocall (as a garbage collector may
// free one while a Python device's callback runs) cannot be closed there: a
// reentrant ecall. Its lent threads must still leave before the enclave
// terminates, or terminating waits for them forever.
class FreesAnotherSession final : public veil_test::CpuBackedDevice {
 public:
  FreesAnotherSession() : CpuBackedDevice("frees") {}
  void forward(uint32_t l, const double* a, size_t b, double* z) override {
    victim.reset();
    CpuBackedDevice::forward(l, a, b, z);
  }
  std::unique_ptr<veil::Trainer> victim;
};

TEST(HostThreads, ASessionFreedInsideAnOcallIsClosedBeforeItsEnclaveEnds) {
  auto enclave = std::make_unique<veil::Enclave>();
  veil_test::CpuBackedDevice victim_device("victim");
  FreesAnotherSession device;
  device.victim = std::make_unique<veil::Trainer>(*enclave, victim_device, wide_config());
  device.victim->use_threads(3);
  ASSERT_EQ(device.victim->stats().threads, 3u);
  {
    veil::Trainer trainer(*enclave, device, wide_config());
    const Batch b = batch(1);
    trainer.step(b.x.data(), b.y.data(), kBatch);
    EXPECT_EQ(device.victim, nullptr);
  }
  enclave.reset();  // returns: the victim's parked threads were released first
}

}  // namespace
