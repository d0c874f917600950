// Bad input straight at the generated bridge: the ecall_* host stubs of veil_u.h
// called with NULL pointers, counts that disagree with shapes or overflow, sizes
// that cannot fit, calls out of order and calls after an abort; and, in the
// virtual backend, hand-built marshalling buffers at oe_call_enclave_function.
// Every call must come back with a status (never a crash) and, for veil_status_t
// failures, an error message that names what was wrong; the session must stay
// usable wherever the protocol allows.
#include <gtest/gtest.h>

#include <sys/mman.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bridge.h"  // host/src: routes a session's device ocalls to a veil::Device
#include "veil/veil.h"
#include "veil_u.h"
#include "../cpu_backed_device.h"
#include "../small_model.h"

#if defined(VEIL_BACKEND_VIRTUAL)
#include <openenclave/edger8r/host.h>
#endif

namespace {

constexpr uint32_t kFeatures = 8;
constexpr uint32_t kClasses = 4;
constexpr uint32_t kMaxBatch = 8;

// Honest products except one forward element, on request.
class TestDevice final : public veil_test::CpuBackedDevice {
 public:
  TestDevice() : CpuBackedDevice("bridge-test") {}
  void forward(uint32_t l, const double* a, size_t b, double* z) override {
    CpuBackedDevice::forward(l, a, b, z);
    if (cheat_) {
      cheat_ = false;
      z[0] += 1.0;
    }
  }
  bool cheat_ = false;
};

class Bridge : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    uint32_t flags = 0;  // a release image: debug enclaves are opt-in
#if defined(VEIL_OE_SIMULATION)
    flags |= OE_ENCLAVE_FLAG_SIMULATE;
#endif
    created_ = oe_create_veil_enclave(veil::Enclave::default_image_path().c_str(),
                                      OE_ENCLAVE_TYPE_AUTO, flags, nullptr, 0, &enclave_);
  }
  // A failure in SetUpTestSuite reads as "skipped" to CTest; here it fails every test.
  void SetUp() override { ASSERT_EQ(created_, OE_OK) << oe_result_str(created_); }
  static void TearDownTestSuite() {
    EXPECT_EQ(oe_terminate_enclave(enclave_), OE_OK);
    enclave_ = nullptr;
  }

  void TearDown() override {
    for (uint64_t s : sessions_) {
      veil::detail::unbind_device(s);
      int rc = 0;
      ecall_close_session(enclave_, &rc, s);
    }
  }

  uint64_t open() {
    uint64_t s = 0;
    int rc = -1;
    EXPECT_EQ(ecall_open_session(enclave_, &rc, &s), OE_OK);
    EXPECT_EQ(rc, VEIL_OK);
    sessions_.push_back(s);
    // A device per session: a device keeps one weight matrix per layer index.
    devices_.push_back(std::make_unique<TestDevice>());
    veil::detail::bind_device(s, devices_.back().get(), &timing_);
    return s;
  }

  static std::string error_of(uint64_t session) {
    return veil::detail::last_error(enclave_, session);
  }

  static veil_train_config_t config() { return veil_test::small_wire_config(kMaxBatch); }
  static std::vector<veil_layer_spec_t> layers() {
    return {{kFeatures, 16, 1}, {16, kClasses, 0}};
  }

  // A trained-ready session; on `device` when given, else on a TestDevice.
  uint64_t configured(veil::Device* device = nullptr, veil_train_config_t c = config()) {
    uint64_t s = open();
    if (device != nullptr) veil::detail::bind_device(s, device, &timing_);
    std::vector<veil_layer_spec_t> l = layers();
    int rc = -1;
    EXPECT_EQ(ecall_train_init(enclave_, &rc, s, &c, l.data(), l.size()), OE_OK);
    EXPECT_EQ(rc, VEIL_OK) << error_of(s);
    return s;
  }

  // One honest step: the session still works after whatever came before.
  void expect_usable(uint64_t s) {
    std::vector<double> x(kMaxBatch * kFeatures, 0.25);
    std::vector<int32_t> y(kMaxBatch, 1);
    veil_step_result_t r{};
    int rc = -1;
    ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r),
              OE_OK);
    EXPECT_EQ(rc, VEIL_OK) << error_of(s);
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
  std::vector<std::unique_ptr<TestDevice>> devices_;  // devices_[i] serves sessions_[i]
  veil::Timing timing_;
};

oe_enclave_t* Bridge::enclave_ = nullptr;
oe_result_t Bridge::created_ = OE_FAILURE;

TEST_F(Bridge, NullEnclaveHandleIsRefused) {
  uint64_t s = 0;
  int rc = -1;
  EXPECT_EQ(ecall_open_session(nullptr, &rc, &s), OE_INVALID_PARAMETER);
  EXPECT_EQ(rc, -1) << "nothing reaches the caller from a failed call";
}

TEST_F(Bridge, NullOutPointersAreRefusedByName) {
  int rc = -1;
  ASSERT_EQ(ecall_open_session(enclave_, &rc, nullptr), OE_OK);
  expect_error(0, rc, VEIL_ERR_INVALID_ARGUMENT, {"session", "NULL"});
  ASSERT_EQ(ecall_get_info(enclave_, &rc, nullptr), OE_OK);
  expect_error(0, rc, VEIL_ERR_INVALID_ARGUMENT, {"info", "NULL"});

  uint64_t s = configured();
  ASSERT_EQ(ecall_session_stats(enclave_, &rc, s, nullptr), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"stats", "NULL"});
  ASSERT_EQ(ecall_last_error(enclave_, &rc, s, nullptr, 64), OE_OK);
  EXPECT_EQ(rc, VEIL_ERR_INVALID_ARGUMENT);

  std::vector<double> x(kMaxBatch * kFeatures, 0.5);
  std::vector<int32_t> y(kMaxBatch, 0);
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), nullptr),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"result", "NULL"});
  ASSERT_EQ(ecall_predict(enclave_, &rc, s, x.data(), x.size(), kMaxBatch, nullptr,
                          kMaxBatch * kClasses),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"output", "NULL"});
  ASSERT_EQ(ecall_export_weights(enclave_, &rc, s, 0, nullptr, (kFeatures + 1) * 16), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"weights", "NULL"});
  expect_usable(s);
}

TEST_F(Bridge, NullInPointersWithCountsAreRefusedByName) {
  int rc = -1;
  uint64_t s = open();
  veil_train_config_t c = config();
  std::vector<veil_layer_spec_t> l = layers();
  ASSERT_EQ(ecall_train_init(enclave_, &rc, s, nullptr, l.data(), l.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"config", "NULL"});
  ASSERT_EQ(ecall_train_init(enclave_, &rc, s, &c, nullptr, l.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"layers", "NULL"});
  ASSERT_EQ(ecall_train_init(enclave_, &rc, s, &c, l.data(), l.size()), OE_OK);
  ASSERT_EQ(rc, VEIL_OK) << "a refused train_init leaves the session configurable";

  std::vector<double> x(kMaxBatch * kFeatures, 0.5), out(kMaxBatch * kClasses);
  std::vector<int32_t> y(kMaxBatch, 0);
  veil_step_result_t r{};
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, nullptr, x.size(), y.data(), y.size(), &r), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"x", "NULL"});
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), nullptr, y.size(), &r), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"labels", "NULL"});
  ASSERT_EQ(ecall_predict(enclave_, &rc, s, nullptr, x.size(), kMaxBatch, out.data(), out.size()),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"x", "NULL"});
  expect_usable(s);
}

TEST_F(Bridge, InferenceNullPointersAreRefusedByName) {
  int rc = -1;
  uint64_t s = open();
  veil_inference_config_t c{};
  c.layer_count = 2;
  c.mode = 1;  // private
  c.frac_act = 8;
  c.frac_weights = 10;
  c.act_clip = 64;
  std::vector<veil_layer_spec_t> l = layers();
  ASSERT_EQ(ecall_inference_init(enclave_, &rc, s, nullptr, l.data(), l.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"inference_init", "config", "NULL"});
  ASSERT_EQ(ecall_inference_init(enclave_, &rc, s, &c, nullptr, l.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"layers", "NULL"});
  ASSERT_EQ(ecall_inference_init(enclave_, &rc, s, &c, l.data(), l.size()), OE_OK);
  ASSERT_EQ(rc, VEIL_OK) << error_of(s);

  std::vector<double> w0((kFeatures + 1) * 16, 0.125), w1(17 * kClasses, -0.25);
  ASSERT_EQ(ecall_inference_load_layer(enclave_, &rc, s, 0, nullptr, w0.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"weights", "NULL"});
  ASSERT_EQ(ecall_inference_load_layer(enclave_, &rc, s, 0, w0.data(), w0.size()), OE_OK);
  ASSERT_EQ(rc, VEIL_OK) << error_of(s);
  ASSERT_EQ(ecall_inference_load_layer(enclave_, &rc, s, 1, w1.data(), w1.size()), OE_OK);
  ASSERT_EQ(rc, VEIL_OK) << error_of(s);

  // A slot for batches of 8: per layer a 24-byte header, 6 bytes per value, a 16-byte tag.
  std::vector<uint8_t> sealed((24 + 6 * 8 * 16 + 16) + (24 + 6 * 8 * kClasses + 16));
  ASSERT_EQ(ecall_inference_precompute(enclave_, &rc, s, 8, nullptr, sealed.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"sealed", "NULL"});
  ASSERT_EQ(ecall_inference_precompute(enclave_, &rc, s, 8, sealed.data(), sealed.size()), OE_OK);
  ASSERT_EQ(rc, VEIL_OK) << error_of(s);

  std::vector<double> x(kMaxBatch * kFeatures, 0.5), out(kMaxBatch * kClasses);
  ASSERT_EQ(ecall_inference_predict(enclave_, &rc, s, nullptr, x.size(), kMaxBatch, sealed.data(),
                                    sealed.size(), out.data(), out.size()),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"x", "NULL"});
  ASSERT_EQ(ecall_inference_predict(enclave_, &rc, s, x.data(), x.size(), kMaxBatch, nullptr,
                                    sealed.size(), out.data(), out.size()),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"sealed", "NULL"});
  ASSERT_EQ(ecall_inference_predict(enclave_, &rc, s, x.data(), x.size(), kMaxBatch, sealed.data(),
                                    sealed.size(), nullptr, out.size()),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"output", "NULL"});
  ASSERT_EQ(ecall_inference_predict(enclave_, &rc, s, x.data(), x.size(), kMaxBatch, sealed.data(),
                                    sealed.size(), out.data(), out.size()),
            OE_OK);
  EXPECT_EQ(rc, VEIL_OK) << "refused calls spend no slot: " << error_of(s);

  ASSERT_EQ(ecall_inference_status(enclave_, &rc, s, nullptr), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"status", "NULL"});
  veil_inference_status_t st{};
  ASSERT_EQ(ecall_inference_status(enclave_, &rc, s, &st), OE_OK);
  EXPECT_EQ(rc, VEIL_OK);
  EXPECT_EQ(st.aborted, 0);
  EXPECT_EQ(st.batches, 1u);
}

TEST_F(Bridge, CountsThatDisagreeWithShapesAreNamed) {
  int rc = -1;
  uint64_t s = open();
  veil_train_config_t c = config();
  std::vector<veil_layer_spec_t> l = layers();
  ASSERT_EQ(ecall_train_init(enclave_, &rc, s, &c, l.data(), 1), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"layer_count=1", "config says 2"});
  l[1].inputs = 15;
  ASSERT_EQ(ecall_train_init(enclave_, &rc, s, &c, l.data(), l.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"layer 1 takes 15 inputs", "gives 16"});
  l = layers();
  ASSERT_EQ(ecall_train_init(enclave_, &rc, s, &c, l.data(), l.size()), OE_OK);
  ASSERT_EQ(rc, VEIL_OK);

  std::vector<double> x(kMaxBatch * kFeatures, 0.5), out(kMaxBatch * kClasses + 1);
  std::vector<int32_t> y(kMaxBatch, 0);
  veil_step_result_t r{};
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size() - 1, y.data(), y.size(), &r),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"x holds 63 values", "8 x 8"});
  ASSERT_EQ(ecall_predict(enclave_, &rc, s, x.data(), x.size(), kMaxBatch, out.data(), out.size()),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"output holds 33 values", "8 x 4"});
  std::vector<double> w((kFeatures + 1) * 16 + 1);
  ASSERT_EQ(ecall_export_weights(enclave_, &rc, s, 0, w.data(), w.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"holds 145 values", "layer 0 has 144"});
  ASSERT_EQ(ecall_export_weights(enclave_, &rc, s, 7, w.data(), w.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"layer 7 does not exist"});
  std::vector<int32_t> more(kMaxBatch + 1, 0);
  std::vector<double> xmore((kMaxBatch + 1) * kFeatures, 0.5);
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, xmore.data(), xmore.size(), more.data(),
                             more.size(), &r),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"batch of 9 rows", "max_batch=8"});
  expect_usable(s);
}

TEST_F(Bridge, CountsThatOverflowStopAtTheHostStub) {
  int rc = -1;
  uint64_t s = configured();
  const size_t huge = std::numeric_limits<size_t>::max() / 4 + 1;  // 8 * huge wraps
  std::vector<double> in(4, 1.0);
  EXPECT_EQ(ecall_inference_load_layer(enclave_, &rc, s, 0, in.data(), huge), OE_INTEGER_OVERFLOW);
  veil_train_config_t c = config();
  std::vector<veil_layer_spec_t> l = layers();
  EXPECT_EQ(ecall_train_init(enclave_, &rc, s, &c, l.data(), std::numeric_limits<size_t>::max()),
            OE_INTEGER_OVERFLOW);
  std::vector<double> w(4);
  EXPECT_EQ(ecall_export_weights(enclave_, &rc, s, 0, w.data(), huge), OE_INTEGER_OVERFLOW);
  EXPECT_EQ(ecall_last_error(enclave_, &rc, s, reinterpret_cast<char*>(w.data()),
                             std::numeric_limits<size_t>::max() - 7),
            OE_INTEGER_OVERFLOW);
  expect_usable(s);
}

TEST_F(Bridge, BuffersLargerThanTheEnclaveCanHoldAreRefused) {
  int rc = -1;
  uint64_t s = configured();
  // 2 GiB of output: more than the enclave's arena (NumHeapPages); the pages are
  // never touched because the call fails before anything is copied back.
  const size_t count = size_t{1} << 28;
  void* mem = mmap(nullptr, count * sizeof(double), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* big = static_cast<double*>(mem);
  std::vector<double> x(kMaxBatch * kFeatures, 0.5);
  EXPECT_EQ(ecall_predict(enclave_, &rc, s, x.data(), x.size(), kMaxBatch, big, count),
            OE_OUT_OF_MEMORY);
  // 2^44 values: not even the host stub can allocate that.
  EXPECT_EQ(ecall_export_weights(enclave_, &rc, s, 0, big, size_t{1} << 44), OE_OUT_OF_MEMORY);
  munmap(mem, count * sizeof(double));
  expect_usable(s);
}

TEST_F(Bridge, ModelsThatWouldExhaustEnclaveMemoryAreRefused) {
  int rc = -1;
  uint64_t s = open();
  veil_train_config_t c = config();
  c.layer_count = 1;
  c.max_batch = 1;
  // 65536 x 65536 weights: 32 GiB at float64, before any work buffer.
  veil_layer_spec_t wide[1] = {{65536, 65536, 0}};
  ASSERT_EQ(ecall_train_init(enclave_, &rc, s, &c, wide, 1), OE_OK);
  expect_error(s, rc, VEIL_ERR_RESOURCE, {"MiB of enclave memory", "widths"});
  c.max_batch = 65536;
  veil_layer_spec_t tall[1] = {{8192, 8192, 0}};
  ASSERT_EQ(ecall_train_init(enclave_, &rc, s, &c, tall, 1), OE_OK);
  expect_error(s, rc, VEIL_ERR_RESOURCE, {"MiB of enclave memory", "max_batch"});
  c.max_batch = 65537;
  ASSERT_EQ(ecall_train_init(enclave_, &rc, s, &c, tall, 1), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"max_batch=65537"});
  veil_layer_spec_t too_wide[1] = {{8, 65537, 0}};
  c.max_batch = 8;
  ASSERT_EQ(ecall_train_init(enclave_, &rc, s, &c, too_wide, 1), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"8 -> 65537", "widths must be in"});
  c = config();
  std::vector<veil_layer_spec_t> l = layers();
  ASSERT_EQ(ecall_train_init(enclave_, &rc, s, &c, l.data(), l.size()), OE_OK);
  EXPECT_EQ(rc, VEIL_OK) << error_of(s);
  expect_usable(s);
}

TEST_F(Bridge, CallsOutOfOrderAreRefused) {
  int rc = -1;
  uint64_t s = open();
  std::vector<double> x(kMaxBatch * kFeatures, 0.5), out(kMaxBatch * kClasses);
  std::vector<int32_t> y(kMaxBatch, 0);
  veil_step_result_t r{};
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r), OE_OK);
  expect_error(s, rc, VEIL_ERR_ORDER, {"train_step", "not configured"});
  ASSERT_EQ(ecall_predict(enclave_, &rc, s, x.data(), x.size(), kMaxBatch, out.data(), out.size()),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_ORDER, {"predict", "not configured"});
  ASSERT_EQ(ecall_halve_lr(enclave_, &rc, s), OE_OK);
  expect_error(s, rc, VEIL_ERR_ORDER, {"halve_lr", "not configured"});
  std::vector<double> w(16);
  ASSERT_EQ(ecall_export_weights(enclave_, &rc, s, 0, w.data(), w.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_ORDER, {"export_weights", "not configured"});

  veil_train_config_t c = config();
  std::vector<veil_layer_spec_t> l = layers();
  ASSERT_EQ(ecall_train_init(enclave_, &rc, s, &c, l.data(), l.size()), OE_OK);
  ASSERT_EQ(rc, VEIL_OK);
  ASSERT_EQ(ecall_train_init(enclave_, &rc, s, &c, l.data(), l.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_ORDER, {"already configured"});
  expect_usable(s);

  // A closed or never-opened session.
  uint64_t gone = open();
  ASSERT_EQ(ecall_close_session(enclave_, &rc, gone), OE_OK);
  ASSERT_EQ(rc, VEIL_OK);
  ASSERT_EQ(ecall_close_session(enclave_, &rc, gone), OE_OK);
  expect_error(0, rc, VEIL_ERR_NO_SESSION, {"is not open"});
  ASSERT_EQ(ecall_train_step(enclave_, &rc, gone, x.data(), x.size(), y.data(), y.size(), &r),
            OE_OK);
  expect_error(0, rc, VEIL_ERR_NO_SESSION, {"is not open"});
  veil_session_stats_t st{};
  ASSERT_EQ(ecall_session_stats(enclave_, &rc, 0x1234, &st), OE_OK);
  expect_error(0, rc, VEIL_ERR_NO_SESSION, {"0x1234 is not open"});
}

TEST_F(Bridge, NothingLeavesAnAbortedSession) {
  int rc = -1;
  uint64_t s = configured();
  TestDevice& device = *devices_.back();
  uint64_t other = configured();
  std::vector<double> x(kMaxBatch * kFeatures, 0.5), out(kMaxBatch * kClasses);
  std::vector<int32_t> y(kMaxBatch, 2);
  veil_step_result_t r{};
  expect_usable(s);
  device.cheat_ = true;
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r), OE_OK);
  expect_error(s, rc, VEIL_ERR_VERIFICATION, {"layer 0, phase forward, step 2:", "mismatch"});

  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r), OE_OK);
  expect_error(s, rc, VEIL_ERR_ABORTED, {"train_step", "aborted"});
  ASSERT_EQ(ecall_predict(enclave_, &rc, s, x.data(), x.size(), kMaxBatch, out.data(), out.size()),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_ABORTED, {"predict", "aborted"});
  std::vector<double> w((kFeatures + 1) * 16);
  ASSERT_EQ(ecall_export_weights(enclave_, &rc, s, 0, w.data(), w.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_ABORTED, {"export_weights", "aborted"});
  ASSERT_EQ(ecall_halve_lr(enclave_, &rc, s), OE_OK);
  expect_error(s, rc, VEIL_ERR_ABORTED, {"halve_lr", "aborted"});
  veil_train_config_t c = config();
  std::vector<veil_layer_spec_t> l = layers();
  ASSERT_EQ(ecall_train_init(enclave_, &rc, s, &c, l.data(), l.size()), OE_OK);
  expect_error(s, rc, VEIL_ERR_ABORTED, {"aborted"});

  veil_session_stats_t st{};
  ASSERT_EQ(ecall_session_stats(enclave_, &rc, s, &st), OE_OK);
  EXPECT_EQ(rc, VEIL_OK);
  EXPECT_EQ(st.aborted, 1);
  expect_usable(other);  // an abort ends one session, not the enclave
}

TEST_F(Bridge, SaturationIsReportedPerStepAndPerSession) {
  int rc = -1;
  uint64_t s = configured();
  std::vector<double> x(kMaxBatch * kFeatures, 0.5);
  std::vector<int32_t> y(kMaxBatch, 3);
  x[3] = 1e9;    // act_clip is 64
  x[10] = -1e300;
  x[20] = 65.0;
  veil_step_result_t r{};
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r), OE_OK);
  ASSERT_EQ(rc, VEIL_OK) << error_of(s);
  EXPECT_EQ(r.saturated, 3u);
  veil_session_stats_t st{};
  ASSERT_EQ(ecall_session_stats(enclave_, &rc, s, &st), OE_OK);
  EXPECT_EQ(st.saturated, 3u);
}

TEST_F(Bridge, BadValuesAreNamedAndLeaveTheSessionUsable) {
  int rc = -1;
  uint64_t s = configured();
  std::vector<double> x(kMaxBatch * kFeatures, 0.5), out(kMaxBatch * kClasses);
  std::vector<int32_t> y(kMaxBatch, 0);
  veil_step_result_t r{};
  x[13] = std::nan("");
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"x[1, 5] is NaN"});
  x[13] = -INFINITY;
  ASSERT_EQ(ecall_predict(enclave_, &rc, s, x.data(), x.size(), kMaxBatch, out.data(), out.size()),
            OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"x[1, 5] is infinite"});
  x[13] = 0.5;
  y[6] = -1;
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"labels[6]=-1", "[0, 4)"});
  y[6] = 4;
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"labels[6]=4"});
  y[6] = 0;
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), 0, y.data(), 0, &r), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"train_step", "empty"});
  ASSERT_EQ(ecall_predict(enclave_, &rc, s, x.data(), 0, 0, out.data(), 0), OE_OK);
  expect_error(s, rc, VEIL_ERR_INVALID_ARGUMENT, {"predict", "empty"});
  expect_usable(s);
}

TEST_F(Bridge, AFailingDeviceIsNamedAndOnlyAnUpdateFailureEndsTheSession) {
  // A device that stops working between products leaves the session usable; one
  // that fails while applying an update leaves weights the enclave cannot vouch for.
  class Flaky final : public veil_test::CpuBackedDevice {
   public:
    Flaky() : CpuBackedDevice("flaky") {}
    void forward(uint32_t l, const double* a, size_t b, double* z) override {
      if (fail_forward) throw std::runtime_error("forward unit on fire");
      CpuBackedDevice::forward(l, a, b, z);
    }
    void update(uint32_t l, const double* a, const double* dz, size_t b) override {
      if (fail_update) throw std::runtime_error("update unit on fire");
      CpuBackedDevice::update(l, a, dz, b);
    }
    bool fail_forward = false, fail_update = false;
  } flaky;
  int rc = -1;
  uint64_t s = open();
  veil::detail::bind_device(s, &flaky, &timing_);
  veil_train_config_t c = config();
  std::vector<veil_layer_spec_t> l = layers();
  ASSERT_EQ(ecall_train_init(enclave_, &rc, s, &c, l.data(), l.size()), OE_OK);
  ASSERT_EQ(rc, VEIL_OK);
  std::vector<double> x(kMaxBatch * kFeatures, 0.5);
  std::vector<int32_t> y(kMaxBatch, 0);
  veil_step_result_t r{};
  flaky.fail_forward = true;
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r), OE_OK);
  expect_error(s, rc, VEIL_ERR_DEVICE, {"layer 0, phase forward, step 1:", "forward"});
  EXPECT_NE(veil::detail::take_device_error(s).find("on fire"), std::string::npos);
  flaky.fail_forward = false;
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r), OE_OK);
  EXPECT_EQ(rc, VEIL_OK) << error_of(s);
  flaky.fail_update = true;
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r), OE_OK);
  expect_error(s, rc, VEIL_ERR_DEVICE, {"layer 1, phase update, step 2:"});
  flaky.fail_update = false;
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r), OE_OK);
  expect_error(s, rc, VEIL_ERR_ABORTED, {"aborted"});
  veil::detail::unbind_device(s);
}

// Records the operands of every product and update, per layer.
class OperandRecorder final : public veil_test::CpuBackedDevice {
 public:
  OperandRecorder() : CpuBackedDevice("recorder") {}
  void forward(uint32_t l, const double* a, size_t b, double* z) override {
    at(forward_a, l).assign(a, a + b * rows_of(l));
    CpuBackedDevice::forward(l, a, b, z);
  }
  void backward(uint32_t l, const double* dz, size_t b, double* da) override {
    at(backward_dz, l).assign(dz, dz + b * cols_of(l));
    CpuBackedDevice::backward(l, dz, b, da);
  }
  void update(uint32_t l, const double* a, const double* dz, size_t b) override {
    at(update_a, l).assign(a, a + b * rows_of(l));
    at(update_dz, l).assign(dz, dz + b * cols_of(l));
    CpuBackedDevice::update(l, l == replay_layer && !replay_a.empty() ? replay_a.data() : a, dz, b);
  }
  void upload(uint32_t l, const double* w, size_t r, size_t c) override {
    if (shapes.size() <= l) shapes.resize(l + 1);
    shapes[l] = {r, c};
    CpuBackedDevice::upload(l, w, r, c);
  }
  static std::vector<double>& at(std::vector<std::vector<double>>& per_layer, uint32_t l) {
    if (per_layer.size() <= l) per_layer.resize(l + 1);
    return per_layer[l];
  }
  size_t rows_of(uint32_t l) const { return shapes.at(l).first; }
  size_t cols_of(uint32_t l) const { return shapes.at(l).second; }

  std::vector<std::pair<size_t, size_t>> shapes;  // rows x cols of each uploaded layer
  std::vector<std::vector<double>> forward_a, backward_dz, update_a, update_dz;
  std::vector<double> replay_a;  // when set: the A replay_layer's update uses instead of its own
  uint32_t replay_layer = 1;
};

TEST_F(Bridge, AStepSendsEachOperandAcrossTheBoundaryOnce) {
  // The update reuses the A of the step's forward and the dZ of its backward:
  // per step only the forward operands, the backward operands and layer 0's
  // dZ (layer 0 has no backward) leave the enclave.
  OperandRecorder device;
  uint64_t s = configured(&device);
  int rc = -1;
  const size_t b = kMaxBatch, hidden = layers()[0].outputs;
  // The operands are narrow (float32) at this configuration's formats.
  const uint64_t sent_per_step = sizeof(float) * b * ((kFeatures + 1) + (hidden + 1) + kClasses + hidden);
  const uint64_t back_per_step = sizeof(double) * b * (hidden + kClasses + (hidden + 1));
  std::vector<int32_t> y(kMaxBatch);
  for (int step = 0; step < 3; ++step) {
    std::vector<double> x(kMaxBatch * kFeatures);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37 * static_cast<double>(i + 11 * step));
    for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int32_t>((i + step) % kClasses);
    const veil::Timing before = timing_;
    veil_step_result_t r{};
    ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r), OE_OK);
    ASSERT_EQ(rc, VEIL_OK) << error_of(s);
    EXPECT_EQ(timing_.bytes_to_device - before.bytes_to_device, sent_per_step) << "step " << step;
    EXPECT_EQ(timing_.bytes_from_device - before.bytes_from_device, back_per_step) << "step " << step;
    // What the host handed the device for each update is what the enclave sent
    // for this step's products.
    EXPECT_EQ(device.update_a[0], device.forward_a[0]);
    EXPECT_EQ(device.update_a[1], device.forward_a[1]);
    EXPECT_EQ(device.update_dz[1], device.backward_dz[1]);
  }
}

TEST_F(Bridge, NarrowAndWideOperandsTrainAlike) {
  // Operands whose formats stay below 2^23 cross the boundary as float32,
  // others as float64. The values are the same integers, so training is the
  // same bit for bit and only the bytes differ. act_clip = 1e5 (x 2^8 > 2^23)
  // makes the wide session; no activation here comes near either clip.
  OperandRecorder narrow_device, wide_device;
  veil_train_config_t wide_config = config();
  wide_config.act_clip = 1e5;
  const uint64_t narrow = configured(&narrow_device);
  const uint64_t wide = configured(&wide_device, wide_config);
  const size_t b = kMaxBatch, hidden = layers()[0].outputs;
  const uint64_t operands = b * ((kFeatures + 1) + (hidden + 1) + kClasses + hidden);
  std::vector<int32_t> y(kMaxBatch);
  int rc = -1;
  for (int step = 0; step < 3; ++step) {
    std::vector<double> x(kMaxBatch * kFeatures);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.29 * static_cast<double>(i + 7 * step));
    for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int32_t>((i + step) % kClasses);
    veil_step_result_t rn{}, rw{};
    uint64_t sent[2];
    for (int w = 0; w < 2; ++w) {
      const uint64_t before = timing_.bytes_to_device;
      ASSERT_EQ(ecall_train_step(enclave_, &rc, w ? wide : narrow, x.data(), x.size(), y.data(),
                                 y.size(), w ? &rw : &rn),
                OE_OK);
      ASSERT_EQ(rc, VEIL_OK) << error_of(w ? wide : narrow);
      sent[w] = timing_.bytes_to_device - before;
    }
    EXPECT_EQ(sent[0], sizeof(float) * operands) << "step " << step;
    EXPECT_EQ(sent[1], sizeof(double) * operands) << "step " << step;
    EXPECT_EQ(std::memcmp(&rn.loss, &rw.loss, sizeof rn.loss), 0) << "step " << step;
    EXPECT_EQ(rn.correct, rw.correct) << "step " << step;
    EXPECT_EQ(rn.saturated, 0u);
    for (uint32_t l = 0; l < 2; ++l) {
      EXPECT_EQ(narrow_device.forward_a[l], wide_device.forward_a[l]) << "layer " << l;
      EXPECT_EQ(narrow_device.update_dz[l], wide_device.update_dz[l]) << "layer " << l;
    }
  }
  for (uint32_t l = 0; l < 2; ++l) {
    const size_t count = (layers()[l].inputs + 1) * layers()[l].outputs;
    std::vector<double> wn(count), ww(count);
    ASSERT_EQ(ecall_export_weights(enclave_, &rc, narrow, l, wn.data(), count), OE_OK);
    ASSERT_EQ(rc, VEIL_OK) << error_of(narrow);
    ASSERT_EQ(ecall_export_weights(enclave_, &rc, wide, l, ww.data(), count), OE_OK);
    ASSERT_EQ(rc, VEIL_OK) << error_of(wide);
    EXPECT_EQ(std::memcmp(wn.data(), ww.data(), count * sizeof(double)), 0) << "layer " << l;
  }
}

TEST_F(Bridge, AnUpdateMadeWithAStaleOperandFailsTheNextCheck) {
  // A host that answers "reuse the forward operand" with an older one (here:
  // layer 1's update in step 2 uses step 1's A) leaves weights the fingerprints
  // do not describe, and the next product of that layer fails its check.
  OperandRecorder device;
  uint64_t s = configured(&device);
  int rc = -1;
  std::vector<int32_t> y(kMaxBatch, 2);
  veil_step_result_t r{};
  std::vector<double> x(kMaxBatch * kFeatures, 0.5);
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r), OE_OK);
  ASSERT_EQ(rc, VEIL_OK) << error_of(s);
  device.replay_a = device.forward_a[1];
  x.assign(x.size(), -0.75);
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r), OE_OK);
  ASSERT_EQ(rc, VEIL_OK) << "a wrong update is only found by the next check: " << error_of(s);
  ASSERT_NE(device.update_a[1], device.replay_a) << "the test needs A to change between steps";
  device.replay_a.clear();
  ASSERT_EQ(ecall_train_step(enclave_, &rc, s, x.data(), x.size(), y.data(), y.size(), &r), OE_OK);
  expect_error(s, rc, VEIL_ERR_VERIFICATION, {"layer 1, phase forward, step 3:", "mismatch"});
}

TEST_F(Bridge, TheHostRefusesToReuseAnOperandItDoesNotHold) {
  // Called as the bridge would: an update with counts of zero and no operand
  // kept for that layer, or kept for another batch size, is named and refused.
  uint64_t s = configured();
  EXPECT_EQ(ocall_device_update(s, 1, nullptr, 0, nullptr, 0, kMaxBatch), VEIL_ERR_DEVICE);
  EXPECT_NE(veil::detail::take_device_error(s).find("reuse the forward operand"), std::string::npos);
  expect_usable(s);
  EXPECT_EQ(ocall_device_update(s, 1, nullptr, 0, nullptr, 0, kMaxBatch / 2), VEIL_ERR_DEVICE);
  const std::string message = veil::detail::take_device_error(s);
  EXPECT_NE(message.find("kept " + std::to_string(kMaxBatch * (layers()[1].inputs + 1)) + " values"),
            std::string::npos)
      << message;
}

#if defined(VEIL_BACKEND_VIRTUAL)
// Hand-built buffers at the runtime's call path into the real image: the trusted
// side of the generated bridge re-derives every size from the header alone.
class RawBuffers : public Bridge {
 protected:
  oe_result_t call(uint32_t id, const std::vector<uint8_t>& in, size_t out_size) {
    std::vector<uint8_t> out(out_size);
    size_t written = 0;
    return oe_call_enclave_function(enclave_, id, in.data(), in.size(), out.data(), out.size(),
                                    &written);
  }
  static size_t header(size_t n) { return (n + 15) & ~size_t{15}; }
};

TEST_F(RawBuffers, UnknownFunctionIdsAreNotFound) {
  std::vector<uint8_t> in(64);
  EXPECT_EQ(call(veil_fcn_id_trusted_call_count, in, 64), OE_NOT_FOUND);
  EXPECT_EQ(call(0xFFFFFFFFu, in, 64), OE_NOT_FOUND);
}

TEST_F(RawBuffers, TruncatedOrPaddedBuffersAreRefused) {
  uint64_t s = configured();
  const size_t h = header(sizeof(ecall_train_step_args_t));
  ecall_train_step_args_t args{};
  args.session = s;
  // x crosses as a pointer ([user_check]): only labels travel in the buffer.
  std::vector<double> x(kMaxBatch * kFeatures, 0.5);
  args.x = x.data();
  args.x_count = x.size();
  args._p_labels = 1;
  args.batch = kMaxBatch;
  args._p_result = 1;
  const size_t y_bytes = header(args.batch * sizeof(int32_t));
  const size_t out_size = h + header(sizeof(veil_step_result_t));
  std::vector<uint8_t> in(h + y_bytes);
  std::memcpy(in.data(), &args, sizeof args);
  EXPECT_EQ(call(veil_fcn_id_ecall_train_step, in, out_size), OE_OK) << "the well-formed call";

  std::vector<uint8_t> shorter(in.begin(), in.end() - 16);
  EXPECT_EQ(call(veil_fcn_id_ecall_train_step, shorter, out_size), OE_BUFFER_TOO_SMALL);
  std::vector<uint8_t> longer(in);
  longer.resize(in.size() + 16);
  EXPECT_EQ(call(veil_fcn_id_ecall_train_step, longer, out_size), OE_INVALID_PARAMETER);
  EXPECT_EQ(call(veil_fcn_id_ecall_train_step, in, out_size - 16), OE_BUFFER_TOO_SMALL);
  std::vector<uint8_t> stub(in.begin(), in.begin() + 8);
  EXPECT_EQ(call(veil_fcn_id_ecall_train_step, stub, out_size), OE_BUFFER_TOO_SMALL);

  ecall_train_step_args_t wrapped = args;
  wrapped.batch = std::numeric_limits<size_t>::max() / 2;
  std::vector<uint8_t> overflow(in);
  std::memcpy(overflow.data(), &wrapped, sizeof wrapped);
  EXPECT_EQ(call(veil_fcn_id_ecall_train_step, overflow, out_size), OE_INTEGER_OVERFLOW);

  // Pointer flags cleared while counts stay: the enclave sees NULL with a count.
  ecall_train_step_args_t nulls = args;
  nulls.x = nullptr;
  nulls._p_labels = 0;
  std::vector<uint8_t> bare(h);
  std::memcpy(bare.data(), &nulls, sizeof nulls);
  std::vector<uint8_t> out(out_size);
  size_t written = 0;
  ASSERT_EQ(oe_call_enclave_function(enclave_, veil_fcn_id_ecall_train_step, bare.data(),
                                     bare.size(), out.data(), out.size(), &written),
            OE_OK);
  ecall_train_step_args_t back{};
  std::memcpy(&back, out.data(), sizeof back);
  expect_error(s, back.oe_retval, VEIL_ERR_INVALID_ARGUMENT, {"NULL"});
  expect_usable(s);
}
#endif

}  // namespace
