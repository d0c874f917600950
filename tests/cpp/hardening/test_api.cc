// Bad input through the C++ API (host/include/veil/): every case gets the
// veil::Error subclass that fits and a message naming what was wrong, and the
// session stays usable wherever the protocol allows.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "veil/veil.h"
#include "../cpu_backed_device.h"

namespace {

veil::Enclave& enclave() {
  static veil::Enclave e;
  return e;
}

veil::TrainConfig config() {
  veil::TrainConfig c;
  c.layers = {{8, 16, veil::Activation::relu}, {16, 4, veil::Activation::identity}};
  c.lr_exp = 3;
  c.max_batch = 8;
  return c;
}

// Runs f, expects an E whose message contains every one of words.
template <typename E>
void expect_error(const std::function<void()>& f, std::initializer_list<const char*> words) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const E& e) {
    std::string what = e.what();
    for (const char* w : words)
      EXPECT_NE(what.find(w), std::string::npos) << "'" << w << "' not in: " << what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong error type: " << e.what();
  }
}

struct Batch {
  std::vector<double> x = std::vector<double>(8 * 8, 0.25);
  std::vector<int32_t> y = std::vector<int32_t>(8, 1);
};

TEST(ApiBadInput, ModelDescriptionsAreCheckedByName) {
  veil::CpuDevice device(1);
  auto refused = [&](veil::TrainConfig c) { veil::Trainer t(enclave(), device, c); };
  veil::TrainConfig c = config();
  c.layers.clear();
  expect_error<veil::ConfigError>([&] { refused(c); }, {"no layers"});
  c = config();
  c.layers[1].inputs = 15;
  expect_error<veil::InputError>([&] { refused(c); }, {"layer 1 takes 15 inputs", "gives 16"});
  c = config();
  c.layers[0].outputs = 0;
  c.layers[1].inputs = 0;
  expect_error<veil::InputError>([&] { refused(c); }, {"layer 0 is 8 -> 0"});
  c = config();
  c.layers[0].activation = static_cast<veil::Activation>(9);
  expect_error<veil::InputError>([&] { refused(c); }, {"unknown activation 9"});
  c = config();
  c.loss = static_cast<veil::Loss>(7);
  expect_error<veil::InputError>([&] { refused(c); }, {"unknown loss 7"});
  c = config();
  c.layers[1].activation = veil::Activation::sigmoid;
  expect_error<veil::ConfigError>([&] { refused(c); }, {"last layer's activation"});
  c = config();
  c.frac_act = -1;
  expect_error<veil::ConfigError>([&] { refused(c); }, {"frac_act=-1"});
  c = config();
  c.frac_grad = 99;
  expect_error<veil::ConfigError>([&] { refused(c); }, {"frac_grad=99"});
  c = config();
  c.lr_exp = 31;
  expect_error<veil::ConfigError>([&] { refused(c); }, {"lr_exp=31"});
  c = config();
  c.act_clip = NAN;
  expect_error<veil::ConfigError>([&] { refused(c); }, {"act_clip=nan"});
  c = config();
  c.weight_max = -INFINITY;
  expect_error<veil::ConfigError>([&] { refused(c); }, {"weight_max=-inf"});
  c = config();
  c.grad_clip = 0;
  expect_error<veil::ConfigError>([&] { refused(c); }, {"grad_clip=0"});
  c = config();
  c.max_batch = 0;
  expect_error<veil::InputError>([&] { refused(c); }, {"max_batch=0"});
}

TEST(ApiBadInput, ModelsThatWouldExhaustMemoryAreRefused) {
  veil::CpuDevice device(1);
  veil::TrainConfig c = config();
  c.max_batch = 1;
  c.layers = {{60000, 60000, veil::Activation::identity}, {60000, 2, veil::Activation::identity}};
  expect_error<veil::EnclaveError>([&] { veil::Trainer t(enclave(), device, c); },
                                   {"MiB of enclave memory"});
  c = config();
  c.max_batch = 65536;
  c.layers = {{4096, 4096, veil::Activation::relu}, {4096, 2, veil::Activation::identity}};
  expect_error<veil::EnclaveError>([&] { veil::Trainer t(enclave(), device, c); },
                                   {"MiB of enclave memory", "max_batch"});
  c.max_batch = 1u << 20;
  expect_error<veil::InputError>([&] { veil::Trainer t(enclave(), device, c); },
                                 {"max_batch=1048576"});
  c = config();
  c.layers[0].outputs = 1u << 17;
  c.layers[1].inputs = 1u << 17;
  expect_error<veil::InputError>([&] { veil::Trainer t(enclave(), device, c); },
                                 {"widths must be in"});
  // The configuration budget: products that could not stay below 2^53.
  c = config();
  c.lr_exp = 30;
  c.frac_act = 20;
  c.frac_grad = 24;
  c.act_clip = 1e6;
  c.weight_max = 1e6;
  expect_error<veil::ConfigError>([&] { veil::Trainer t(enclave(), device, c); },
                                  {"layer 0", "2^53"});
}

TEST(ApiBadInput, BatchesAreCheckedByNameAndTheSessionSurvives) {
  veil::CpuDevice device(1);
  veil::Trainer trainer(enclave(), device, config());
  Batch b;
  b.x[8 * 2 + 6] = NAN;
  expect_error<veil::InputError>([&] { trainer.step(b.x.data(), b.y.data(), 8); },
                                 {"x[2, 6] is NaN"});
  b.x[8 * 2 + 6] = INFINITY;
  std::vector<double> out(8 * 4);
  expect_error<veil::InputError>([&] { trainer.predict(b.x.data(), 8, out.data()); },
                                 {"x[2, 6] is infinite"});
  b.x[8 * 2 + 6] = 0.25;
  b.y[5] = 4;
  expect_error<veil::InputError>([&] { trainer.step(b.x.data(), b.y.data(), 8); },
                                 {"labels[5]=4", "[0, 4)"});
  b.y[5] = -2;
  expect_error<veil::InputError>([&] { trainer.step(b.x.data(), b.y.data(), 8); },
                                 {"labels[5]=-2"});
  b.y[5] = 1;
  expect_error<veil::InputError>([&] { trainer.step(b.x.data(), b.y.data(), 0); }, {"empty"});
  expect_error<veil::InputError>([&] { trainer.predict(b.x.data(), 0, out.data()); }, {"empty"});
  std::vector<double> x9(9 * 8, 0.5);
  std::vector<int32_t> y9(9, 0);
  expect_error<veil::InputError>([&] { trainer.step(x9.data(), y9.data(), 9); },
                                 {"batch of 9 rows", "max_batch=8"});
  expect_error<veil::InputError>([&] { trainer.step(nullptr, b.y.data(), 8); },
                                 {"x", "NULL"});
  expect_error<veil::InputError>([&] { trainer.step(b.x.data(), nullptr, 8); },
                                 {"labels", "NULL"});
  expect_error<veil::InputError>([&] { trainer.predict(b.x.data(), 8, nullptr); },
                                 {"output", "NULL"});
  expect_error<veil::InputError>([&] { trainer.export_weights(2); }, {"layer 2 does not exist"});
  veil::StepResult r = trainer.step(b.x.data(), b.y.data(), 8);
  EXPECT_EQ(r.step, 1u);
  EXPECT_FALSE(trainer.stats().aborted);
}

TEST(ApiBadInput, ValuesBeyondTheFixedPointRangeSaturateAndAreCounted) {
  veil::CpuDevice device(1);
  veil::Trainer trainer(enclave(), device, config());
  Batch b;
  b.x[0] = 1e12;  // act_clip is 64
  b.x[9] = -100;
  veil::StepResult r = trainer.step(b.x.data(), b.y.data(), 8);
  EXPECT_EQ(r.saturated, 2u);
  std::vector<double> out(8 * 4);
  trainer.predict(b.x.data(), 8, out.data());
  EXPECT_EQ(trainer.stats().saturated, 4u) << "the step's two and the prediction's two";
  b.x[0] = b.x[9] = 0.5;
  EXPECT_EQ(trainer.step(b.x.data(), b.y.data(), 8).saturated, 0u);
}

// Honest, except the operation that is told to throw.
class Faulty final : public veil_test::CpuBackedDevice {
 public:
  Faulty() : CpuBackedDevice("faulty") {}
  void upload(uint32_t l, const double* w, size_t r, size_t c) override {
    fail("upload");
    CpuBackedDevice::upload(l, w, r, c);
  }
  void forward(uint32_t l, const double* a, size_t b, double* z) override {
    fail("forward");
    CpuBackedDevice::forward(l, a, b, z);
    if (cheat) z[1] -= 1;
  }
  void backward(uint32_t l, const double* dz, size_t b, double* da) override {
    fail("backward");
    CpuBackedDevice::backward(l, dz, b, da);
  }
  void update(uint32_t l, const double* a, const double* dz, size_t b) override {
    fail("update");
    CpuBackedDevice::update(l, a, dz, b);
  }
  void scale(uint32_t l) override {
    fail("scale");
    CpuBackedDevice::scale(l);
  }
  double max_abs(uint32_t l) override {
    fail("max_abs");
    return CpuBackedDevice::max_abs(l);
  }
  void download(uint32_t l, double* w) override {
    fail("download");
    CpuBackedDevice::download(l, w);
  }
  std::string broken;
  bool cheat = false;

 private:
  void fail(const char* op) {
    if (broken == op) throw std::runtime_error(std::string(op) + " is broken");
  }
};

TEST(ApiBadInput, DeviceFailuresAreNamedAndOnlyWeightChangesEndTheSession) {
  Faulty device;
  device.broken = "upload";
  expect_error<veil::DeviceError>([&] { veil::Trainer t(enclave(), device, config()); },
                                  {"upload", "upload is broken"});
  device.broken.clear();
  veil::Trainer trainer(enclave(), device, config());
  Batch b;
  // Products that fail change nothing on the device: the session carries on.
  for (const char* op : {"forward", "backward"}) {
    device.broken = op;
    expect_error<veil::DeviceError>([&] { trainer.step(b.x.data(), b.y.data(), 8); },
                                    {"step 1:", op, "is broken"});
  }
  device.broken = "download";
  expect_error<veil::DeviceError>([&] { trainer.export_weights(0); },
                                  {"layer 0, phase export (export), after step 0:", "is broken"});
  device.broken.clear();
  EXPECT_FALSE(trainer.stats().aborted);
  trainer.step(b.x.data(), b.y.data(), 8);
  EXPECT_EQ(trainer.export_weights(1).size(), 17u * 4u);

  device.broken = "update";
  expect_error<veil::DeviceError>([&] { trainer.step(b.x.data(), b.y.data(), 8); },
                                  {"phase update, step 2:", "update is broken"});
  device.broken.clear();
  EXPECT_TRUE(trainer.stats().aborted);
  expect_error<veil::ProtocolError>([&] { trainer.step(b.x.data(), b.y.data(), 8); },
                                    {"aborted"});
}

// Calls on one session must not overlap: the second is refused, not queued.
TEST(ApiBadInput, ACallWhileAnotherRunsOnTheSameSessionIsRefused) {
  class Gate final : public veil_test::CpuBackedDevice {
   public:
    Gate() : CpuBackedDevice("gate") {}
    void forward(uint32_t l, const double* a, size_t b, double* z) override {
      if (hold) {
        hold = false;
        std::unique_lock<std::mutex> lock(mutex);
        entered = true;
        changed.notify_all();
        changed.wait_for(lock, std::chrono::seconds(30), [this] { return released; });
      }
      CpuBackedDevice::forward(l, a, b, z);
    }
    std::mutex mutex;
    std::condition_variable changed;
    bool hold = true, entered = false, released = false;
  } device;
  veil::Trainer trainer(enclave(), device, config());
  Batch b;
  std::string worker_error;
  std::thread worker([&] {
    try {
      trainer.step(b.x.data(), b.y.data(), 8);
    } catch (const std::exception& e) {
      worker_error = e.what();
    }
  });
  {
    std::unique_lock<std::mutex> lock(device.mutex);
    EXPECT_TRUE(device.changed.wait_for(lock, std::chrono::seconds(30),
                                        [&] { return device.entered; }));
  }
  std::vector<double> out(8 * 4);
  expect_error<veil::ProtocolError>([&] { trainer.predict(b.x.data(), 8, out.data()); },
                                    {"already running a call"});
  {
    std::lock_guard<std::mutex> lock(device.mutex);
    device.released = true;
  }
  device.changed.notify_all();
  worker.join();
  EXPECT_EQ(worker_error, "") << "the step that was running finishes normally";
  EXPECT_EQ(trainer.stats().step, 1u);
  EXPECT_NO_THROW(trainer.predict(b.x.data(), 8, out.data()));
}

TEST(ApiBadInput, NothingLeavesAnAbortedSession) {
  Faulty device;
  veil::Trainer trainer(enclave(), device, config());
  Batch b;
  trainer.step(b.x.data(), b.y.data(), 8);
  device.cheat = true;
  expect_error<veil::VerificationError>([&] { trainer.step(b.x.data(), b.y.data(), 8); },
                                        {"layer 0, phase forward, step 2:", "mismatch"});
  device.cheat = false;
  std::vector<double> out(8 * 4);
  expect_error<veil::ProtocolError>([&] { trainer.step(b.x.data(), b.y.data(), 8); },
                                    {"train_step", "aborted"});
  expect_error<veil::ProtocolError>([&] { trainer.predict(b.x.data(), 8, out.data()); },
                                    {"predict", "aborted"});
  expect_error<veil::ProtocolError>([&] { trainer.export_weights(0); },
                                    {"export_weights", "aborted"});
  expect_error<veil::ProtocolError>([&] { trainer.halve_lr(); }, {"halve_lr", "aborted"});
  veil::SessionStats s = trainer.stats();
  EXPECT_TRUE(s.aborted);
  EXPECT_EQ(s.step, 0u) << "the protocol state is gone with the abort";
  // Other sessions of the same enclave carry on.
  veil::CpuDevice honest(1);
  veil::Trainer other(enclave(), honest, config());
  EXPECT_NO_THROW(other.step(b.x.data(), b.y.data(), 8));
}

}  // namespace
