// The bench image (edl/veil_bench.edl) through its own bridge: it is the production
// enclave plus the all-in-enclave baseline; the production image, reached through
// the same bridge, binds none of the baseline's ecalls. And the baseline's host
// API (host/bench/baseline.h) trains, predicts, multiplies and names bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "baseline.h"  // host/bench
#include "veil/enclave.h"
#include "veil/error.h"
#include "veil_bench_u.h"
#include "../small_model.h"

namespace {

constexpr uint32_t kFeatures = 8;
constexpr uint32_t kClasses = 4;
constexpr uint32_t kMaxBatch = 8;

uint32_t create_flags() {
  uint32_t flags = 0;  // release images: debug enclaves are opt-in
#if defined(VEIL_OE_SIMULATION)
  flags |= OE_ENCLAVE_FLAG_SIMULATE;
#endif
  return flags;
}

veil_train_config_t wire_config() { return veil_test::small_wire_config(kMaxBatch); }

std::vector<veil_layer_spec_t> wire_layers() { return {{kFeatures, 16, 1}, {16, kClasses, 0}}; }

veil::TrainConfig api_config() {
  veil::TrainConfig c;
  c.layers = {{kFeatures, 16, veil::Activation::relu}, {16, kClasses, veil::Activation::identity}};
  c.max_batch = kMaxBatch;
  c.lr_exp = 2;
  c.seed = 3;
  return c;
}

// The bench image through the raw stubs of veil_bench_u.h.
class BenchBridge : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    created_ = oe_create_veil_bench_enclave(veil::bench::BenchEnclave::default_image_path().c_str(),
                                            OE_ENCLAVE_TYPE_AUTO, create_flags(), nullptr, 0,
                                            &enclave_);
  }
  // A failure in SetUpTestSuite reads as "skipped" to CTest; here it fails every test.
  void SetUp() override { ASSERT_EQ(created_, OE_OK) << oe_result_str(created_); }
  static void TearDownTestSuite() {
    EXPECT_EQ(oe_terminate_enclave(enclave_), OE_OK);
    enclave_ = nullptr;
  }
  void TearDown() override {
    for (uint64_t s : sessions_) {
      int rc = 0;
      ecall_enclave_train_release(enclave_, &rc, s);
      ecall_close_session(enclave_, &rc, s);
    }
  }

  uint64_t open() {
    uint64_t s = 0;
    int rc = -1;
    EXPECT_EQ(ecall_open_session(enclave_, &rc, &s), OE_OK);
    EXPECT_EQ(rc, VEIL_OK);
    sessions_.push_back(s);
    return s;
  }

  static std::string error_of(uint64_t session) {
    char message[1024] = {0};
    int rc = -1;
    EXPECT_EQ(ecall_last_error(enclave_, &rc, session, message, sizeof message), OE_OK);
    return message;
  }

  // rc is the status and the session's message contains every word of `words`.
  void expect_error(uint64_t s, int rc, int status, std::initializer_list<const char*> words) {
    EXPECT_EQ(rc, status);
    std::string message = error_of(s);
    for (const char* w : words)
      EXPECT_NE(message.find(w), std::string::npos) << "'" << w << "' not in: " << message;
  }

  static oe_enclave_t* enclave_;
  static oe_result_t created_;
  std::vector<uint64_t> sessions_;
};

oe_enclave_t* BenchBridge::enclave_ = nullptr;
oe_result_t BenchBridge::created_ = OE_FAILURE;

TEST_F(BenchBridge, HoldsTheProductionCalls) {
  veil_info_t info{};
  int rc = -1;
  ASSERT_EQ(ecall_get_info(enclave_, &rc, &info), OE_OK);
  ASSERT_EQ(rc, VEIL_OK);
  EXPECT_NE(info.features & VEIL_FEATURE_VERIFY_TRAINING, 0u);
  uint64_t s = open();
  veil_session_stats_t stats{};
  ASSERT_EQ(ecall_session_stats(enclave_, &rc, s, &stats), OE_OK);
  EXPECT_EQ(rc, VEIL_OK);
}

TEST_F(BenchBridge, BaselineNullPointersAreRefusedByName) {
  int rc = -1;
  uint64_t s = open();
  veil_train_config_t c = wire_config();
  std::vector<veil_layer_spec_t> l = wire_layers();
  ASSERT_EQ(ecall_enclave_train_init(enclave_, &rc, s, nullptr, l.data(), l.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"enclave_train_init", "config", "NULL"});
  ASSERT_EQ(ecall_enclave_train_init(enclave_, &rc, s, &c, nullptr, l.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"layers", "NULL"});
  ASSERT_EQ(ecall_enclave_train_init(enclave_, &rc, s, &c, l.data(), l.size()), OE_OK);
  ASSERT_EQ(rc, VEIL_OK) << error_of(s);
  std::vector<double> x(kMaxBatch * kFeatures, 0.5), out(kMaxBatch * kClasses);
  std::vector<int32_t> y(kMaxBatch, 1);
  veil_step_result_t r{};
  ASSERT_EQ(ecall_enclave_train_step(enclave_, &rc, s, nullptr, x.size(), y.data(), y.size(), &r),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"x", "NULL"});
  ASSERT_EQ(ecall_enclave_train_step(enclave_, &rc, s, x.data(), x.size(), nullptr, y.size(), &r),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"labels", "NULL"});
  ASSERT_EQ(ecall_enclave_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(),
                                     nullptr),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"result", "NULL"});
  ASSERT_EQ(ecall_enclave_predict(enclave_, &rc, s, x.data(), x.size(), kMaxBatch, nullptr,
                                  out.size()),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"output", "NULL"});
  ASSERT_EQ(ecall_enclave_gemm(enclave_, &rc, s, 4, 4, 4, 1, nullptr), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"checksum", "NULL"});
  ASSERT_EQ(ecall_enclave_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r),
            OE_OK);
  EXPECT_EQ(rc, VEIL_OK) << error_of(s);
}

TEST_F(BenchBridge, ABaselineBelongsToOneSessionUntilReleased) {
  int rc = -1;
  uint64_t s = open(), other = open();
  veil_train_config_t c = wire_config();
  std::vector<veil_layer_spec_t> l = wire_layers();
  std::vector<double> x(kMaxBatch * kFeatures, 0.25);
  std::vector<int32_t> y(kMaxBatch, 2);
  veil_step_result_t r{};
  ASSERT_EQ(ecall_enclave_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_ORDER, {"enclave_train_step", "not configured"});
  ASSERT_EQ(ecall_enclave_train_init(enclave_, &rc, s, &c, l.data(), l.size()), OE_OK);
  ASSERT_EQ(rc, VEIL_OK) << error_of(s);
  ASSERT_EQ(ecall_enclave_train_init(enclave_, &rc, s, &c, l.data(), l.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_ORDER, {"already configured"});
  ASSERT_EQ(ecall_enclave_train_step(enclave_, &rc, other, x.data(), x.size(), y.data(), y.size(),
                                     &r),
            OE_OK);
  expect_error(other, rc, VEIL_ERR_ORDER, {"not configured"});

  ASSERT_EQ(ecall_enclave_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r),
            OE_OK);
  ASSERT_EQ(rc, VEIL_OK) << error_of(s);
  EXPECT_EQ(r.step, 1u);
  ASSERT_EQ(ecall_enclave_train_release(enclave_, &rc, s), OE_OK);
  ASSERT_EQ(rc, VEIL_OK);
  ASSERT_EQ(ecall_enclave_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_ORDER, {"not configured"});
  ASSERT_EQ(ecall_enclave_train_release(enclave_, &rc, s), OE_OK);
  EXPECT_EQ(rc, VEIL_OK) << "releasing nothing is not an error";
  ASSERT_EQ(ecall_enclave_train_init(enclave_, &rc, s, &c, l.data(), l.size()), OE_OK);
  ASSERT_EQ(rc, VEIL_OK) << "a released session can be configured again: " << error_of(s);
  ASSERT_EQ(ecall_enclave_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r),
            OE_OK);
  ASSERT_EQ(rc, VEIL_OK) << error_of(s);
  EXPECT_EQ(r.step, 1u) << "a fresh baseline";

  ASSERT_EQ(ecall_enclave_train_release(enclave_, &rc, 0x1234), OE_OK);
  expect_error(0, rc, VEIL_ERR_NO_SESSION, {"0x1234 is not open"});
}

// The production image reached through the bench bridge: ecalls are bound by name
// when the enclave is created, so the production ones work and the baseline's are
// not there to call.
TEST(ProductionImage, BindsNoneOfTheBaselineEcalls) {
  oe_enclave_t* enclave = nullptr;
  ASSERT_EQ(oe_create_veil_bench_enclave(veil::Enclave::default_image_path().c_str(),
                                         OE_ENCLAVE_TYPE_AUTO, create_flags(), nullptr, 0, &enclave),
            OE_OK);
  int rc = -1;
  uint64_t s = 0;
  ASSERT_EQ(ecall_open_session(enclave, &rc, &s), OE_OK);
  ASSERT_EQ(rc, VEIL_OK);
  veil_train_config_t c = wire_config();
  std::vector<veil_layer_spec_t> l = wire_layers();
  std::vector<double> x(kMaxBatch * kFeatures, 0.25), out(kMaxBatch * kClasses);
  std::vector<int32_t> y(kMaxBatch, 2);
  veil_step_result_t r{};
  double checksum = 0;
  EXPECT_EQ(ecall_enclave_train_init(enclave, &rc, s, &c, l.data(), l.size()), OE_NOT_FOUND);
  EXPECT_EQ(ecall_enclave_train_step(enclave, &rc, s, x.data(), x.size(), y.data(), y.size(), &r),
            OE_NOT_FOUND);
  EXPECT_EQ(ecall_enclave_predict(enclave, &rc, s, x.data(), x.size(), kMaxBatch, out.data(),
                                  out.size()),
            OE_NOT_FOUND);
  EXPECT_EQ(ecall_enclave_gemm(enclave, &rc, s, 4, 4, 4, 1, &checksum), OE_NOT_FOUND);
  EXPECT_EQ(ecall_enclave_train_release(enclave, &rc, s), OE_NOT_FOUND);
  EXPECT_EQ(ecall_close_session(enclave, &rc, s), OE_OK);
  EXPECT_EQ(oe_terminate_enclave(enclave), OE_OK);
}

TEST(EnclaveOnlyTrainer, TrainsPredictsAndMultiplies) {
  veil::bench::BenchEnclave enclave;
  EXPECT_EQ(enclave.image_path(), veil::bench::BenchEnclave::default_image_path());
  veil::bench::EnclaveOnlyTrainer trainer(enclave, api_config());
  // One fixed batch, labels a function of the inputs: SGD fits it.
  std::vector<double> x(kMaxBatch * kFeatures);
  std::vector<int32_t> y(kMaxBatch);
  for (size_t i = 0; i < kMaxBatch; ++i) {
    y[i] = static_cast<int32_t>(i % kClasses);
    for (size_t k = 0; k < kFeatures; ++k) x[i * kFeatures + k] = (k == i % kClasses) ? 1.0 : 0.0;
  }
  veil::StepResult first = trainer.step(x.data(), y.data(), kMaxBatch);
  veil::StepResult last = first;
  for (int i = 0; i < 200; ++i) last = trainer.step(x.data(), y.data(), kMaxBatch);
  EXPECT_EQ(last.step, 201u);
  EXPECT_EQ(last.checks_passed, 0u) << "nothing to check: no device";
  EXPECT_LT(last.loss, first.loss / 2);
  EXPECT_EQ(last.correct, kMaxBatch);

  std::vector<double> out(kMaxBatch * kClasses);
  trainer.predict(x.data(), kMaxBatch, out.data());
  for (size_t i = 0; i < kMaxBatch; ++i) {
    double sum = 0;
    for (size_t j = 0; j < kClasses; ++j) sum += out[i * kClasses + j];
    EXPECT_NEAR(sum, 1.0, 1e-6) << "softmax row " << i;
  }
  const double checksum = trainer.gemm(32, 16, 24, 2);
  EXPECT_GT(checksum, 0.0);
  EXPECT_EQ(trainer.gemm(32, 16, 24, 1), checksum) << "the same product each time";
}

TEST(EnclaveOnlyTrainer, BadInputIsNamed) {
  veil::bench::BenchEnclave enclave;
  veil::bench::EnclaveOnlyTrainer trainer(enclave, api_config());
  std::vector<double> x(kMaxBatch * kFeatures, 0.5);
  std::vector<int32_t> y(kMaxBatch, 0);
  x[9] = NAN;
  try {
    trainer.step(x.data(), y.data(), kMaxBatch);
    FAIL() << "NaN accepted";
  } catch (const veil::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("x[1, 1] is not finite"), std::string::npos) << e.what();
  }
  try {
    trainer.gemm(0, 4, 4, 1);
    FAIL() << "an empty GEMM accepted";
  } catch (const veil::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("m, n, k must be in [1, 8192]"), std::string::npos)
        << e.what();
  }
  veil::TrainConfig unchained = api_config();
  unchained.layers[1].inputs = 15;
  EXPECT_THROW(veil::bench::EnclaveOnlyTrainer(enclave, unchained), veil::InputError);
  EXPECT_THROW(veil::bench::BenchEnclave("/nonexistent/libveil_bench_enclave.so"),
               veil::EnclaveError);
}

}  // namespace
