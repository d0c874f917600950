// Data-parallel runs through the C++ API (veil::Trainer::join, docs/design.md §4.6),
// without Ray: workers are threads of this process, each with its own session and
// device, meeting at an in-memory rendezvous. N workers end with one worker's weights
// bit for bit, and an exchange the host alters ends the run.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "veil/veil.h"
#include "../cpu_backed_device.h"

namespace {

constexpr size_t kBatch = 24;
constexpr size_t kInputs = 8;
constexpr uint32_t kClasses = 4;
constexpr int kSteps = 5;
const std::vector<uint8_t> kRunKey(32, 7);

veil::Enclave& shared_enclave() {
  static veil::Enclave enclave;
  return enclave;
}

veil::TrainConfig config() {
  veil::TrainConfig c;
  c.layers = {{kInputs, 16, veil::Activation::relu}, {16, kClasses, veil::Activation::identity}};
  c.lr_exp = 3;
  c.max_batch = kBatch;
  c.seed = 4;
  return c;
}

struct Batch {
  std::vector<double> x;
  std::vector<int32_t> y;
};

Batch batch(int step) {
  std::mt19937_64 rng(500 + step);
  std::normal_distribution<double> n(0.0, 1.0);
  Batch b{std::vector<double>(kBatch * kInputs), std::vector<int32_t>(kBatch)};
  for (double& v : b.x) v = n(rng);
  for (int32_t& y : b.y) y = static_cast<int32_t>(rng() % kClasses);
  return b;
}

// Where the workers' devices meet: each round completes once every worker gave its
// part, and hands every worker the parts in worker order. Once a worker has left
// the run (abandon), every wait throws, as a dead Ray worker's peers' do.
class Rendezvous {
 public:
  explicit Rendezvous(size_t workers) : parts_(workers) {}
  std::vector<std::vector<uint8_t>> meet(size_t worker, std::vector<uint8_t> part) {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t round = round_;
    parts_[worker] = std::move(part);
    if (abandoned_) throw std::runtime_error("a worker left the run");
    if (++arrived_ == parts_.size()) {
      result_ = parts_;
      arrived_ = 0;
      ++round_;
      changed_.notify_all();
    } else {
      changed_.wait(lock, [&] { return round_ != round || abandoned_; });
      if (round_ == round) throw std::runtime_error("a worker left the run");
    }
    return result_;
  }
  void abandon() {
    std::lock_guard<std::mutex> lock(mutex_);
    abandoned_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::vector<uint8_t>> parts_, result_;
  size_t arrived_ = 0;
  uint64_t round_ = 0;
  bool abandoned_ = false;
};

// Honest CPU products; the update applies the sum of every worker's a^T dz.
class WorkerDevice : public veil_test::CpuBackedDevice {
 public:
  WorkerDevice(Rendezvous& rendezvous, size_t worker)
      : CpuBackedDevice("worker"), rendezvous_(rendezvous), worker_(worker) {}
  void upload(uint32_t l, const double* w, size_t r, size_t c) override {
    shapes_.resize(std::max<size_t>(shapes_.size(), l + 1));
    shapes_[l] = {r, c};
    CpuBackedDevice::upload(l, w, r, c);
  }
  void update(uint32_t l, const double* a, const double* dz, size_t batch) override {
    const auto [rows, cols] = shapes_[l];
    std::vector<double> share(rows * cols, 0.0);
    for (size_t i = 0; i < batch; ++i)
      for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < cols; ++c) share[r * cols + c] += a[i * rows + r] * dz[i * cols + c];
    std::vector<uint8_t> bytes(share.size() * sizeof(double));
    std::memcpy(bytes.data(), share.data(), bytes.size());
    std::vector<double> total(rows * cols, 0.0), part(rows * cols);
    for (const std::vector<uint8_t>& p : rendezvous_.meet(worker_, bytes)) {
      std::memcpy(part.data(), p.data(), p.size());
      for (size_t k = 0; k < total.size(); ++k) total[k] += part[k];
    }
    // M - sum: the CPU device's update with one row of ones times the sum.
    std::vector<double> ones(rows * rows, 0.0);
    for (size_t r = 0; r < rows; ++r) ones[r * rows + r] = 1.0;
    CpuBackedDevice::update(l, ones.data(), total.data(), rows);
  }
  void exchange(const uint8_t* message, size_t size, uint8_t* all, size_t capacity) override {
    std::vector<std::vector<uint8_t>> parts =
        rendezvous_.meet(worker_, std::vector<uint8_t>(message, message + size));
    ASSERT_EQ(capacity, parts.size() * size);
    for (size_t k = 0; k < parts.size(); ++k) std::memcpy(all + k * size, parts[k].data(), size);
    if (alter_exchange) all[3] ^= 1;  // a byte of worker 0's message, in transit
  }
  bool alter_exchange = false;

 private:
  Rendezvous& rendezvous_;
  size_t worker_;
  std::vector<std::pair<size_t, size_t>> shapes_;
};

std::vector<std::vector<double>> weights_of(veil::Trainer& t) {
  return {t.export_weights(0), t.export_weights(1)};
}

// kSteps steps of the same global batches, each worker on a contiguous shard; the
// last step gives worker 2 of 3 no rows. Returns worker 0's weights, or the errors.
std::vector<std::vector<double>> train_run(size_t workers, std::vector<std::string>* errors,
                                           std::function<void(WorkerDevice&)> tweak = {}) {
  Rendezvous rendezvous(workers);
  std::vector<std::unique_ptr<WorkerDevice>> devices;
  std::vector<std::unique_ptr<veil::Trainer>> trainers;
  for (size_t k = 0; k < workers; ++k) {
    devices.push_back(std::make_unique<WorkerDevice>(rendezvous, k));
    if (tweak && k == 1) tweak(*devices.back());
    trainers.push_back(std::make_unique<veil::Trainer>(shared_enclave(), *devices.back(), config()));
  }
  errors->assign(workers, "");
  std::vector<std::thread> threads;
  for (size_t k = 0; k < workers; ++k)
    threads.emplace_back([&, k] {
      try {
        trainers[k]->join(kRunKey, static_cast<uint32_t>(k), static_cast<uint32_t>(workers));
        for (int s = 0; s < kSteps; ++s) {
          const Batch b = batch(s);
          const size_t rows = s + 1 == kSteps ? 2 : kBatch;  // 1 + 1 + 0 rows of 3 workers
          const size_t per = (rows + workers - 1) / workers;
          const size_t first = std::min(rows, k * per), count = std::min(rows, first + per) - first;
          trainers[k]->step(b.x.data() + first * kInputs, b.y.data() + first, count);
        }
      } catch (const veil::Error& e) {
        (*errors)[k] = e.what();
        rendezvous.abandon();
      }
    });
  for (std::thread& t : threads) t.join();
  if (!(*errors)[0].empty()) return {};
  return weights_of(*trainers[0]);
}

TEST(HostGroup, WorkersEndWithOneWorkersWeightsBitForBit) {
  veil_test::CpuBackedDevice device("lone");
  veil::Trainer lone(shared_enclave(), device, config());
  for (int s = 0; s < kSteps; ++s) {
    const Batch b = batch(s);
    lone.step(b.x.data(), b.y.data(), s + 1 == kSteps ? 2 : kBatch);
  }
  const auto expected = weights_of(lone);
  for (size_t workers : {1u, 2u, 3u}) {
    std::vector<std::string> errors;
    EXPECT_EQ(train_run(workers, &errors), expected) << workers << " workers: " << errors[0];
  }
}

TEST(HostGroup, AnAlteredExchangeEndsTheRunNamingStepAndWorker) {
  std::vector<std::string> errors;
  train_run(2, &errors, [](WorkerDevice& d) { d.alter_exchange = true; });
  EXPECT_NE(errors[1].find("integrity check failed: join, phase exchange: the message from "
                           "worker 0 does not authenticate"),
            std::string::npos)
      << errors[1];
}

TEST(HostGroup, JoinRefusesBadArgumentsAndLateCallsAndChangesNothing) {
  veil_test::CpuBackedDevice device("lone");
  veil::Trainer trainer(shared_enclave(), device, config());
  EXPECT_THROW(trainer.join(std::vector<uint8_t>(31, 1), 0, 2), veil::InputError);
  EXPECT_THROW(trainer.join(kRunKey, 2, 2), veil::InputError);
  EXPECT_THROW(trainer.join(kRunKey, 0, 0), veil::InputError);
  // A device of no run cannot exchange: the join fails and the session goes on alone.
  EXPECT_THROW(trainer.join(kRunKey, 0, 2), veil::DeviceError);
  const Batch b = batch(0);
  trainer.step(b.x.data(), b.y.data(), kBatch);
  try {
    trainer.join(kRunKey, 0, 1);
    ADD_FAILURE() << "join after a step";
  } catch (const veil::ProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find("only before the session's first step"),
              std::string::npos) << e.what();
  }
  EXPECT_THROW(trainer.step(b.x.data(), b.y.data(), 0), veil::InputError);  // alone: no empty steps
}

}  // namespace
