// Runtime tests: the virtual enclave backend and the bridge veil_edger.py generates,
// driven through the generated host proxies (and, for hostile inputs, through
// hand-built buffers as a malicious host would send them).
#include <gtest/gtest.h>

#include <openenclave/edger8r/host.h>
#include <veil_virtual/host.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "minimal_u.h"
#include "runtime_test_u.h"

namespace {

oe_enclave_t* g_enclave = nullptr;  // the enclave the ocall handlers act on

struct OcallLog {
  std::mutex mutex;
  std::vector<uintptr_t> host_pointers;
  uint64_t enclave_address = 0;
  oe_result_t reentry_result = OE_OK;
};
OcallLog g_log;

// ocall_block: holds the calling ecall (and its TCS) until released.
struct Gate {
  std::mutex mutex;
  std::condition_variable changed;
  int inside = 0;
  bool open = false;
};
Gate g_gate;

bool inside_arena(oe_enclave_t* enclave, const void* p) {
  veil_virtual_enclave_info_t info{};
  if (veil_virtual_get_enclave_info(enclave, &info) != OE_OK) return false;
  auto base = reinterpret_cast<uintptr_t>(info.arena_base);
  auto q = reinterpret_cast<uintptr_t>(p);
  return q >= base && q < base + info.arena_size;
}

oe_enclave_t* create_test_enclave(uint32_t flags = OE_ENCLAVE_FLAG_DEBUG) {
  oe_enclave_t* enclave = nullptr;
  oe_result_t r = oe_create_runtime_test_enclave(RUNTIME_TEST_ENCLAVE, OE_ENCLAVE_TYPE_AUTO, flags,
                                                 nullptr, 0, &enclave);
  EXPECT_EQ(r, OE_OK) << oe_result_str(r);
  return enclave;
}

class VirtualEnclave : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { g_enclave = create_test_enclave(); }
  static void TearDownTestSuite() {
    EXPECT_EQ(oe_terminate_enclave(g_enclave), OE_OK);
    g_enclave = nullptr;
  }
  // Every test ends by showing the enclave still serves a valid call.
  void TearDown() override { expect_still_works(); }

  static void expect_still_works() {
    std::vector<int32_t> v{1, 2, 3};
    int sum = 0;
    ASSERT_EQ(ecall_sum(g_enclave, &sum, v.data(), v.size()), OE_OK);
    EXPECT_EQ(sum, 6);
  }
};

// Builds an input buffer the way the generated proxy does, so a test can then
// corrupt it as a hostile host could.
template <typename Args>
std::vector<uint8_t> forge(const Args& args, const void* payload, size_t payload_size) {
  size_t header = VEIL_EDGER_HEADER_SIZE(Args);
  std::vector<uint8_t> buffer(header + ((payload_size + 15) & ~size_t{15}), 0);
  std::memcpy(buffer.data(), &args, sizeof(args));
  if (payload_size) std::memcpy(buffer.data() + header, payload, payload_size);
  return buffer;
}

}  // namespace

// ---- ocalls implemented by the host -------------------------------------------

extern "C" int ocall_transform(const int32_t* in_values, int32_t* out_values,
                               int32_t* inout_values, size_t n, const char* label, char* note,
                               uint64_t enclave_address) {
  std::lock_guard<std::mutex> lock(g_log.mutex);
  g_log.host_pointers = {reinterpret_cast<uintptr_t>(in_values),
                         reinterpret_cast<uintptr_t>(out_values),
                         reinterpret_cast<uintptr_t>(inout_values),
                         reinterpret_cast<uintptr_t>(label), reinterpret_cast<uintptr_t>(note)};
  g_log.enclave_address = enclave_address;
  if (std::strcmp(label, "roundtrip") != 0) return -1;
  for (size_t i = 0; i < n; ++i) {
    out_values[i] = in_values[i] * 2;
    inout_values[i] += 1;
    // The host owns its copy of [in] data; scribbling on it must not reach the enclave.
    const_cast<int32_t*>(in_values)[i] = -1;
  }
  for (char* p = note; *p; ++p) *p = static_cast<char>(*p - 'a' + 'A');
  return static_cast<int>(n);
}

extern "C" void ocall_block(void) {
  std::unique_lock<std::mutex> lock(g_gate.mutex);
  ++g_gate.inside;
  g_gate.changed.notify_all();
  g_gate.changed.wait(lock, [] { return g_gate.open; });
  --g_gate.inside;
}

extern "C" int ocall_reenter(void) {
  g_log.reentry_result = ecall_nop(g_enclave);
  return static_cast<int>(g_log.reentry_result);
}

extern "C" void ocall_record(const uint8_t* blob, rt_point* p, uint8_t* shared) {
  if (blob[0] == 0xEE) throw std::runtime_error("host refuses this record");
  p->x = blob[0];
  p->y = 16;
  p->color = RT_BLUE;
  for (int i = 0; i < 8; ++i) shared[i] = static_cast<uint8_t>(shared[i] + 1);
}

// ---- result codes ---------------------------------------------------------------

TEST(ResultCodes, NumberedLikeTheSdk) {
  EXPECT_EQ(OE_OK, 0);
  EXPECT_EQ(OE_FAILURE, 1);
  EXPECT_EQ(OE_BUFFER_TOO_SMALL, 2);
  EXPECT_EQ(OE_INVALID_PARAMETER, 3);
  EXPECT_EQ(OE_REENTRANT_ECALL, 4);
  EXPECT_EQ(OE_OUT_OF_MEMORY, 5);
  EXPECT_EQ(OE_OUT_OF_THREADS, 6);
  EXPECT_EQ(OE_UNEXPECTED, 7);
  EXPECT_EQ(OE_NOT_FOUND, 9);
  EXPECT_EQ(OE_INTEGER_OVERFLOW, 10);
  EXPECT_EQ(OE_UNSUPPORTED, 16);
  EXPECT_EQ(OE_ENCLAVE_ABORTING, 19);
  EXPECT_EQ(OE_DEBUG_DOWNGRADE, 25);
  EXPECT_EQ(OE_BUSY, 28);
  EXPECT_EQ(OE_UNSUPPORTED_ENCLAVE_IMAGE, 41);
  EXPECT_EQ(OE_QUOTE_HASH_MISMATCH, 58);
}

TEST(ResultCodes, StringsLikeTheSdk) {
  EXPECT_STREQ(oe_result_str(OE_OK), "OE_OK");
  EXPECT_STREQ(oe_result_str(OE_INVALID_PARAMETER), "OE_INVALID_PARAMETER");
  EXPECT_STREQ(oe_result_str(OE_ENCLAVE_ABORTING), "OE_ENCLAVE_ABORTING");
  EXPECT_STREQ(oe_result_str(OE_OUT_OF_THREADS), "OE_OUT_OF_THREADS");
  EXPECT_STREQ(oe_result_str(QE_QUOTE_ENCLAVE_IDENTITY_PRODUCTID_MISMATCH),
               "QE_QUOTE_ENCLAVE_IDENTITY_PRODUCTID_MISMATCH");
  EXPECT_STREQ(oe_result_str(OE_QUOTE_HASH_MISMATCH), "OE_QUOTE_HASH_MISMATCH");
  EXPECT_STREQ(oe_result_str(static_cast<oe_result_t>(59)), "UNKNOWN");
  EXPECT_STREQ(oe_result_str(__OE_RESULT_MAX), "UNKNOWN");
}

// ---- creation ----------------------------------------------------------------------

TEST(Creation, ConfigurationIsCompiledIntoTheImage) {
  oe_enclave_t* e = create_test_enclave();
  ASSERT_NE(e, nullptr);
  veil_virtual_enclave_info_t info{};
  ASSERT_EQ(veil_virtual_get_enclave_info(e, &info), OE_OK);
  EXPECT_EQ(info.debug, 1u);
  EXPECT_EQ(info.num_tcs, 4u);
  EXPECT_EQ(info.num_heap_pages, 4096u);
  EXPECT_EQ(info.num_stack_pages, 64u);
  EXPECT_EQ(info.product_id, 7);
  EXPECT_EQ(info.security_version, 3);
  EXPECT_EQ(info.arena_size, size_t{4096} * 4096);
  EXPECT_EQ(oe_terminate_enclave(e), OE_OK);
}

TEST(Creation, EachEnclaveIsItsOwnInstance) {
  oe_enclave_t* a = create_test_enclave();
  oe_enclave_t* b = create_test_enclave();
  veil_virtual_enclave_info_t ia{}, ib{};
  ASSERT_EQ(veil_virtual_get_enclave_info(a, &ia), OE_OK);
  ASSERT_EQ(veil_virtual_get_enclave_info(b, &ib), OE_OK);
  EXPECT_NE(ia.arena_base, ib.arena_base);
  // Terminating one leaves the other working.
  EXPECT_EQ(oe_terminate_enclave(a), OE_OK);
  int sum = 0;
  int32_t v[2] = {4, 5};
  EXPECT_EQ(ecall_sum(b, &sum, v, 2), OE_OK);
  EXPECT_EQ(sum, 9);
  EXPECT_EQ(oe_terminate_enclave(b), OE_OK);
}

size_t open_descriptors() {
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)entry;
    ++n;
  }
  return n;
}

size_t mapped_enclave_copies() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  size_t n = 0;
  while (std::getline(maps, line)) n += line.find("veil-enclave") != std::string::npos;
  return n;
}

TEST(Creation, TerminateUnloadsTheImage) {
  // Warm up once: the first load maps the image's own dependencies for good.
  oe_enclave_t* e = create_test_enclave();
  ASSERT_EQ(oe_terminate_enclave(e), OE_OK);
  const size_t fds = open_descriptors();
  const size_t copies = mapped_enclave_copies();
  for (int i = 0; i < 20; ++i) {
    e = create_test_enclave();
    ASSERT_NE(e, nullptr);
    ASSERT_EQ(ecall_nop(e), OE_OK);
    ASSERT_EQ(oe_terminate_enclave(e), OE_OK);
  }
  EXPECT_EQ(open_descriptors(), fds);
  EXPECT_EQ(mapped_enclave_copies(), copies);
}

TEST(Creation, RefusesBadRequests) {
  oe_enclave_t* e = reinterpret_cast<oe_enclave_t*>(0x1);
  EXPECT_EQ(oe_create_runtime_test_enclave("/nonexistent/enclave.so", OE_ENCLAVE_TYPE_AUTO, 0,
                                           nullptr, 0, &e),
            OE_NOT_FOUND);
  EXPECT_EQ(e, nullptr);
  EXPECT_EQ(oe_create_runtime_test_enclave(RUNTIME_TEST_ENCLAVE, OE_ENCLAVE_TYPE_AUTO,
                                           OE_ENCLAVE_FLAG_SIMULATE, nullptr, 0, &e),
            OE_UNSUPPORTED);
  EXPECT_EQ(oe_create_runtime_test_enclave(RUNTIME_TEST_ENCLAVE, OE_ENCLAVE_TYPE_OPTEE, 0,
                                           nullptr, 0, &e),
            OE_INVALID_PARAMETER);
  EXPECT_EQ(oe_create_runtime_test_enclave(RUNTIME_TEST_ENCLAVE, OE_ENCLAVE_TYPE_AUTO, 0x100,
                                           nullptr, 0, &e),
            OE_INVALID_PARAMETER);
  EXPECT_EQ(oe_create_runtime_test_enclave(RUNTIME_TEST_ENCLAVE, OE_ENCLAVE_TYPE_AUTO, 0,
                                           nullptr, 1, &e),
            OE_INVALID_PARAMETER);
  oe_enclave_setting_context_switchless_t switchless{1, 1};
  oe_enclave_setting_t setting{};
  setting.setting_type = OE_ENCLAVE_SETTING_CONTEXT_SWITCHLESS;
  setting.u.context_switchless_setting = &switchless;
  EXPECT_EQ(oe_create_runtime_test_enclave(RUNTIME_TEST_ENCLAVE, OE_ENCLAVE_TYPE_AUTO, 0,
                                           &setting, 1, &e),
            OE_UNSUPPORTED);
  EXPECT_EQ(oe_create_runtime_test_enclave(RUNTIME_TEST_ENCLAVE, OE_ENCLAVE_TYPE_AUTO, 0,
                                           nullptr, 0, nullptr),
            OE_INVALID_PARAMETER);
  // A file that is not an enclave image (its own .conf).
  EXPECT_EQ(oe_create_runtime_test_enclave(RUNTIME_TEST_CONF, OE_ENCLAVE_TYPE_AUTO, 0, nullptr, 0,
                                           &e),
            OE_UNSUPPORTED_ENCLAVE_IMAGE);
  EXPECT_EQ(e, nullptr);
}

TEST(Creation, DebugFlagNeedsADebuggableImage) {
  oe_enclave_t* e = nullptr;
  EXPECT_EQ(oe_create_minimal_enclave(MINIMAL_ENCLAVE, OE_ENCLAVE_TYPE_SGX, OE_ENCLAVE_FLAG_DEBUG,
                                      nullptr, 0, &e),
            OE_DEBUG_DOWNGRADE);
  ASSERT_EQ(oe_create_minimal_enclave(MINIMAL_ENCLAVE, OE_ENCLAVE_TYPE_SGX, 0, nullptr, 0, &e),
            OE_OK);
  int r = 0;
  EXPECT_EQ(ecall_min_ping(e, &r, 41), OE_OK);
  EXPECT_EQ(r, 42);
  EXPECT_EQ(oe_terminate_enclave(e), OE_OK);
}

TEST(Creation, EcallsAreBoundByName) {
  // minimal.edl's only ecall is not in the test image: the call is refused, not
  // misrouted to whatever ecall has the same index there.
  oe_enclave_t* e = nullptr;
  ASSERT_EQ(oe_create_minimal_enclave(RUNTIME_TEST_ENCLAVE, OE_ENCLAVE_TYPE_AUTO, 0, nullptr, 0, &e),
            OE_OK);
  int r = 0;
  EXPECT_EQ(ecall_min_ping(e, &r, 1), OE_NOT_FOUND);
  EXPECT_EQ(oe_terminate_enclave(e), OE_OK);
}

// ---- copy rules ---------------------------------------------------------------------

TEST_F(VirtualEnclave, InBufferIsAnEnclaveCopy) {
  std::vector<uint8_t> data(100);
  std::iota(data.begin(), data.end(), uint8_t{1});
  const std::vector<uint8_t> original = data;
  uint64_t seen = 0;
  int within = -1, outside = -1, facts = 0;
  ASSERT_EQ(ecall_probe_in(g_enclave, &facts, data.data(), data.size(), &seen, &within, &outside),
            OE_OK);
  EXPECT_NE(seen, reinterpret_cast<uint64_t>(data.data()));
  EXPECT_EQ(within, 1);
  EXPECT_EQ(outside, 0);
  EXPECT_EQ(facts & 1, 1) << "[out] parameters are arena memory";
  EXPECT_EQ(facts & 2, 2) << "the enclave heap is outside the arena";
  EXPECT_EQ(facts & 4, 4) << "the enclave stack is outside the arena";
  EXPECT_EQ(facts & 8, 8) << "NULL is neither inside nor outside";
  EXPECT_EQ(facts & 16, 16) << "a wrapping range is neither inside nor outside";
  EXPECT_TRUE(inside_arena(g_enclave, reinterpret_cast<const void*>(seen)));
  EXPECT_FALSE(inside_arena(g_enclave, data.data()));
  EXPECT_EQ(data, original);  // the enclave zeroed its copy only
}

TEST_F(VirtualEnclave, OutBuffersArriveZeroedAndReturnOnSuccess) {
  std::vector<uint32_t> out(64, 0xdeadbeef);
  uint32_t sum = 0;
  ASSERT_EQ(ecall_fill(g_enclave, &sum, out.data(), out.size(), 100), OE_OK);
  uint32_t expected = 0;
  for (uint32_t i = 0; i < 64; ++i) {
    EXPECT_EQ(out[i], 100 + i);
    expected += 100 + i;
  }
  EXPECT_EQ(sum, expected);  // UINT32_MAX would mean the enclave saw non-zero [out] data
}

TEST_F(VirtualEnclave, InOutBuffersTravelBothWays) {
  std::vector<double> v{1.0, -2.5, 3.25};
  int n = 0;
  ASSERT_EQ(ecall_scale(g_enclave, &n, v.data(), 3, 2.0), OE_OK);
  EXPECT_EQ(n, 3);
  EXPECT_EQ(v, (std::vector<double>{2.0, -5.0, 6.5}));
}

TEST_F(VirtualEnclave, NegativeSignedCountIsRefused) {
  std::vector<double> v{1.0, 2.0};
  int n = 77;
  EXPECT_EQ(ecall_scale(g_enclave, &n, v.data(), -1, 2.0), OE_INVALID_PARAMETER);
  EXPECT_EQ(n, 77);
  EXPECT_EQ(v, (std::vector<double>{1.0, 2.0}));
}

TEST_F(VirtualEnclave, Strings) {
  size_t len = 0;
  ASSERT_EQ(ecall_strlen(g_enclave, &len, "hello"), OE_OK);
  EXPECT_EQ(len, 5u);
  ASSERT_EQ(ecall_strlen(g_enclave, &len, ""), OE_OK);
  EXPECT_EQ(len, 0u);
  ASSERT_EQ(ecall_strlen(g_enclave, &len, nullptr), OE_OK);
  EXPECT_EQ(len, SIZE_MAX);  // NULL stays NULL
  char text[] = "MiXed case";
  int changed = 0;
  ASSERT_EQ(ecall_upper(g_enclave, &changed, text), OE_OK);
  EXPECT_STREQ(text, "MIXED CASE");
  EXPECT_EQ(changed, 7);
}

TEST_F(VirtualEnclave, FixedArraysStructsAndEnums) {
  uint8_t key[16];
  for (int i = 0; i < 16; ++i) key[i] = static_cast<uint8_t>(i);
  uint8_t digest[16] = {};
  int32_t grid[2][3] = {{1, 2, 3}, {4, 5, 6}};
  uint64_t sum = 0;
  ASSERT_EQ(ecall_mix_key(g_enclave, &sum, key, digest, grid), OE_OK);
  EXPECT_EQ(sum, 120u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(digest[i], (i ^ 0x5a));
  EXPECT_EQ(grid[0][0], 10);
  EXPECT_EQ(grid[1][2], 61);

  rt_point p{3, 4, {1, 2, 3, 4}, RT_RED};
  rt_point delta{10, 20, {1, 1, 1, 1}, RT_BLUE};
  rt_point moved{};
  rt_segment seg{};
  seg.weights[1][2] = 1.0;
  rt_color c = RT_BLUE;
  ASSERT_EQ(ecall_move(g_enclave, &c, &p, delta, &moved, RT_RED, &seg), OE_OK);
  EXPECT_EQ(c, RT_GREEN);
  EXPECT_EQ(moved.x, 13);
  EXPECT_EQ(moved.y, 24);
  EXPECT_EQ(moved.tag[3], 5);
  EXPECT_EQ(moved.color, RT_RED);
  EXPECT_EQ(seg.stop.x, 13);
  EXPECT_EQ(seg.weights[1][2], 1.5);
  ASSERT_EQ(ecall_move(g_enclave, &c, &p, delta, &moved, RT_GREEN, &seg), OE_OK);
  EXPECT_EQ(c, RT_CYAN);
}

TEST_F(VirtualEnclave, ParameterAndLiteralSizesOfVoidPointers) {
  uint8_t blob[12];
  for (int i = 0; i < 12; ++i) blob[i] = static_cast<uint8_t>(i + 1);
  char tail[8] = {};
  int64_t sum = 0;
  ASSERT_EQ(ecall_bytes(g_enclave, &sum, blob, 12, tail), OE_OK);
  EXPECT_EQ(sum, 78);  // 1 + ... + 12
  EXPECT_EQ(std::string(tail, 8), "tailtail");
}

TEST_F(VirtualEnclave, Scalars) {
  bool even = false;
  ASSERT_EQ(ecall_is_even(g_enclave, &even, 1ull << 40, -7, 'q', 1.5f), OE_OK);
  EXPECT_TRUE(even);
  ASSERT_EQ(ecall_is_even(g_enclave, &even, 3, -7, 'q', 1.5f), OE_OK);
  EXPECT_FALSE(even);
}

TEST_F(VirtualEnclave, OcallsFollowTheSameCopyRules) {
  int result = -1;
  ASSERT_EQ(ecall_ocall_roundtrip(g_enclave, &result, 1000), OE_OK);
  EXPECT_EQ(result, 0) << "the enclave's check number " << result << " failed";
  std::lock_guard<std::mutex> lock(g_log.mutex);
  ASSERT_EQ(g_log.host_pointers.size(), 5u);
  for (uintptr_t p : g_log.host_pointers) {
    EXPECT_FALSE(inside_arena(g_enclave, reinterpret_cast<const void*>(p)));
    EXPECT_NE(p, g_log.enclave_address);
  }
}

TEST_F(VirtualEnclave, FailingCallLeavesOutputsUntouched) {
  std::vector<uint32_t> out(8, 0x11111111);
  uint32_t sum = 0x22;
  // count * sizeof(uint32_t) overflows size_t: the proxy refuses before calling.
  EXPECT_EQ(ecall_fill(g_enclave, &sum, out.data(), SIZE_MAX / 4 + 1, 1), OE_INTEGER_OVERFLOW);
  EXPECT_EQ(sum, 0x22u);
  EXPECT_EQ(out, std::vector<uint32_t>(8, 0x11111111));
}

TEST_F(VirtualEnclave, LargeBuffersAndArenaReuse) {
  // 4 MiB in + 4 MiB out per call in a 16 MiB arena: repeated calls succeed only
  // if every call gives its arena memory back.
  std::vector<double> v(512 * 1024, 1.0);
  for (int round = 0; round < 8; ++round) {
    int n = 0;
    ASSERT_EQ(ecall_scale(g_enclave, &n, v.data(), static_cast<int>(v.size()), 2.0), OE_OK);
    ASSERT_EQ(n, static_cast<int>(v.size()));
  }
  EXPECT_EQ(v.front(), 256.0);
  EXPECT_EQ(v.back(), 256.0);
}

TEST_F(VirtualEnclave, BufferLargerThanTheArenaIsRefused) {
  std::vector<int32_t> big(8 * 1024 * 1024, 1);  // 32 MiB > the 16 MiB arena
  int sum = -5;
  EXPECT_EQ(ecall_sum(g_enclave, &sum, big.data(), big.size()), OE_OUT_OF_MEMORY);
  EXPECT_EQ(sum, -5);
}

// ---- hostile input (hand-built buffers) ------------------------------------------------

TEST_F(VirtualEnclave, UnknownFunctionId) {
  ecall_nop_args_t args{};
  auto in = forge(args, nullptr, 0);
  std::vector<uint8_t> out(in.size());
  size_t written = 0;
  EXPECT_EQ(oe_call_enclave_function(g_enclave, 9999, in.data(), in.size(), out.data(), out.size(),
                                     &written),
            OE_NOT_FOUND);
  EXPECT_EQ(oe_call_enclave_function(g_enclave, runtime_test_fcn_id_trusted_call_count, in.data(),
                                     in.size(), out.data(), out.size(), &written),
            OE_NOT_FOUND);
}

TEST_F(VirtualEnclave, ForgedCountThatOverflowsIsRefused) {
  int32_t values[4] = {1, 2, 3, 4};
  ecall_sum_args_t args{};
  args._p_values = 1;
  args.n = SIZE_MAX / 2;  // n * sizeof(int32_t) overflows inside the enclave
  auto in = forge(args, values, sizeof(values));
  std::vector<uint8_t> out(VEIL_EDGER_HEADER_SIZE(ecall_sum_args_t));
  size_t written = 0;
  EXPECT_EQ(oe_call_enclave_function(g_enclave, runtime_test_fcn_id_ecall_sum, in.data(), in.size(),
                                     out.data(), out.size(), &written),
            OE_INTEGER_OVERFLOW);
  EXPECT_EQ(written, 0u);
}

TEST_F(VirtualEnclave, ForgedCountBeyondTheBufferIsRefused) {
  int32_t values[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  ecall_sum_args_t args{};
  args._p_values = 1;
  args.n = 1000;  // claims 4000 bytes; 32 were sent
  auto in = forge(args, values, sizeof(values));
  std::vector<uint8_t> out(VEIL_EDGER_HEADER_SIZE(ecall_sum_args_t));
  size_t written = 0;
  EXPECT_EQ(oe_call_enclave_function(g_enclave, runtime_test_fcn_id_ecall_sum, in.data(), in.size(),
                                     out.data(), out.size(), &written),
            OE_BUFFER_TOO_SMALL);
  // Extra bytes after the last buffer are refused too: 2 values declared, 4 sent.
  args.n = 2;
  in = forge(args, values, sizeof(values));
  ASSERT_GT(in.size(), VEIL_EDGER_HEADER_SIZE(ecall_sum_args_t) + 16);
  EXPECT_EQ(oe_call_enclave_function(g_enclave, runtime_test_fcn_id_ecall_sum, in.data(), in.size(),
                                     out.data(), out.size(), &written),
            OE_INVALID_PARAMETER);
  // And the honest layout works.
  args.n = 8;
  in = forge(args, values, sizeof(values));
  ASSERT_EQ(oe_call_enclave_function(g_enclave, runtime_test_fcn_id_ecall_sum, in.data(), in.size(),
                                     out.data(), out.size(), &written),
            OE_OK);
  ecall_sum_args_t result{};
  std::memcpy(&result, out.data(), sizeof(result));
  EXPECT_EQ(result.oe_retval, 36);
}

TEST_F(VirtualEnclave, ForgedStringWithoutNulIsRefused) {
  const char text[5] = {'h', 'e', 'l', 'l', 'o'};
  ecall_strlen_args_t args{};
  args._p_text = 1;
  args._len_text = sizeof(text);  // no terminator inside the declared length
  auto in = forge(args, text, sizeof(text));
  std::vector<uint8_t> out(VEIL_EDGER_HEADER_SIZE(ecall_strlen_args_t));
  size_t written = 0;
  EXPECT_EQ(oe_call_enclave_function(g_enclave, runtime_test_fcn_id_ecall_strlen, in.data(),
                                     in.size(), out.data(), out.size(), &written),
            OE_INVALID_PARAMETER);
  args._len_text = 0;  // a present string cannot be empty (it holds at least the NUL)
  in = forge(args, nullptr, 0);
  EXPECT_EQ(oe_call_enclave_function(g_enclave, runtime_test_fcn_id_ecall_strlen, in.data(),
                                     in.size(), out.data(), out.size(), &written),
            OE_INVALID_PARAMETER);
}

TEST_F(VirtualEnclave, HostBuffersMayNotPointIntoTheArena) {
  veil_virtual_enclave_info_t info{};
  ASSERT_EQ(veil_virtual_get_enclave_info(g_enclave, &info), OE_OK);
  void* arena = const_cast<void*>(info.arena_base);
  std::vector<uint8_t> buffer(64);
  size_t written = 0;
  EXPECT_EQ(oe_call_enclave_function(g_enclave, runtime_test_fcn_id_ecall_nop, arena, 64,
                                     buffer.data(), buffer.size(), &written),
            OE_INVALID_PARAMETER);
  EXPECT_EQ(oe_call_enclave_function(g_enclave, runtime_test_fcn_id_ecall_nop, buffer.data(), 64,
                                     arena, 64, &written),
            OE_INVALID_PARAMETER);
  EXPECT_EQ(oe_call_enclave_function(g_enclave, runtime_test_fcn_id_ecall_nop, buffer.data(), 64,
                                     buffer.data(), 64, static_cast<size_t*>(arena)),
            OE_INVALID_PARAMETER);
}

TEST_F(VirtualEnclave, TruncatedHeaderIsRefused) {
  uint8_t in[4] = {};
  std::vector<uint8_t> out(64);
  size_t written = 0;
  EXPECT_EQ(oe_call_enclave_function(g_enclave, runtime_test_fcn_id_ecall_sum, in, sizeof(in),
                                     out.data(), out.size(), &written),
            OE_BUFFER_TOO_SMALL);
}

// ---- handles, threads, re-entry, abort ---------------------------------------------------

TEST_F(VirtualEnclave, NullEnclave) {
  EXPECT_EQ(ecall_nop(nullptr), OE_INVALID_PARAMETER);
  EXPECT_EQ(oe_terminate_enclave(nullptr), OE_INVALID_PARAMETER);
}

TEST_F(VirtualEnclave, TerminatedEnclave) {
  oe_enclave_t* e = create_test_enclave();
  ASSERT_EQ(ecall_nop(e), OE_OK);
  ASSERT_EQ(oe_terminate_enclave(e), OE_OK);
  EXPECT_EQ(ecall_nop(e), OE_INVALID_PARAMETER);
  EXPECT_EQ(oe_terminate_enclave(e), OE_INVALID_PARAMETER);
}

TEST_F(VirtualEnclave, MoreConcurrentEcallsThanTcsGetOutOfThreads) {
  veil_virtual_enclave_info_t info{};
  ASSERT_EQ(veil_virtual_get_enclave_info(g_enclave, &info), OE_OK);
  const int tcs = static_cast<int>(info.num_tcs);
  {
    std::lock_guard<std::mutex> lock(g_gate.mutex);
    g_gate.open = false;
  }
  std::vector<int> results(tcs, -1);
  std::vector<oe_result_t> calls(tcs, OE_FAILURE);
  std::vector<std::thread> threads;
  for (int i = 0; i < tcs; ++i)
    threads.emplace_back([i, &results, &calls] {
      calls[i] = ecall_block_in_ocall(g_enclave, &results[i]);
    });
  {
    std::unique_lock<std::mutex> lock(g_gate.mutex);
    g_gate.changed.wait(lock, [tcs] { return g_gate.inside == tcs; });
  }
  // Every TCS is held by a thread parked in an ocall.
  EXPECT_EQ(ecall_nop(g_enclave), OE_OUT_OF_THREADS);
  {
    std::lock_guard<std::mutex> lock(g_gate.mutex);
    g_gate.open = true;
  }
  g_gate.changed.notify_all();
  for (auto& t : threads) t.join();
  for (int i = 0; i < tcs; ++i) {
    EXPECT_EQ(calls[i], OE_OK);
    EXPECT_EQ(results[i], 0);
  }
  EXPECT_EQ(ecall_nop(g_enclave), OE_OK);
}

TEST_F(VirtualEnclave, EcallFromInsideAnOcallIsReentrant) {
  int host_saw = 0;
  ASSERT_EQ(ecall_try_reenter(g_enclave, &host_saw), OE_OK);
  EXPECT_EQ(host_saw, OE_REENTRANT_ECALL);
  EXPECT_EQ(g_log.reentry_result, OE_REENTRANT_ECALL);
}

TEST_F(VirtualEnclave, ConcurrentEcallsOnSeveralThreads) {
  veil_virtual_enclave_info_t info{};
  ASSERT_EQ(veil_virtual_get_enclave_info(g_enclave, &info), OE_OK);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < info.num_tcs; ++t)
    threads.emplace_back([t, &failures] {
      std::vector<int32_t> v(1000 + t * 7);
      for (int round = 0; round < 200; ++round) {
        std::iota(v.begin(), v.end(), static_cast<int32_t>(round + t));
        int64_t expected = std::accumulate(v.begin(), v.end(), int64_t{0});
        int sum = 0;
        if (ecall_sum(g_enclave, &sum, v.data(), v.size()) != OE_OK || sum != expected)
          ++failures;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(VirtualEnclave, AbortedEnclaveRefusesEverything) {
  oe_enclave_t* e = create_test_enclave();
  ASSERT_NE(e, nullptr);
  std::vector<uint8_t> out(64, 0x11);
  // The enclave writes its [out] buffer, then aborts: nothing comes back.
  EXPECT_EQ(ecall_write_then_abort(e, out.data(), out.size()), OE_ENCLAVE_ABORTING);
  EXPECT_EQ(out, std::vector<uint8_t>(64, 0x11));
  EXPECT_EQ(ecall_nop(e), OE_ENCLAVE_ABORTING);
  int sum = 0;
  int32_t v[1] = {1};
  EXPECT_EQ(ecall_sum(e, &sum, v, 1), OE_ENCLAVE_ABORTING);
  // Other enclave instances are unaffected.
  EXPECT_EQ(ecall_nop(g_enclave), OE_OK);
  EXPECT_EQ(oe_terminate_enclave(e), OE_OK);
}

TEST_F(VirtualEnclave, ExceptionEscapingAnEcallAbortsTheEnclave) {
  oe_enclave_t* e = create_test_enclave();
  ASSERT_NE(e, nullptr);
  int r = 0;
  ASSERT_EQ(ecall_throw(e, &r, -4), OE_OK);
  EXPECT_EQ(r, -4);
  r = 123;
  EXPECT_EQ(ecall_throw(e, &r, 1), OE_ENCLAVE_ABORTING);
  EXPECT_EQ(r, 123);
  EXPECT_EQ(ecall_nop(e), OE_ENCLAVE_ABORTING);
  EXPECT_EQ(oe_terminate_enclave(e), OE_OK);
}

// ---- platform services ------------------------------------------------------------------

TEST_F(VirtualEnclave, SealingAndAttestationAreUnsupported) {
  int32_t seal_by_policy = 0, seal_v2 = 0, report = 0, evidence = 0;
  uint8_t random[32] = {};
  int r = -1;
  ASSERT_EQ(ecall_platform(g_enclave, &r, &seal_by_policy, &seal_v2, &report, &evidence, random),
            OE_OK);
  EXPECT_EQ(r, 0);
  EXPECT_EQ(seal_by_policy, OE_UNSUPPORTED);
  EXPECT_EQ(seal_v2, OE_UNSUPPORTED);
  EXPECT_EQ(report, OE_UNSUPPORTED);
  EXPECT_EQ(evidence, OE_UNSUPPORTED);
  uint8_t second[32] = {};
  ASSERT_EQ(ecall_platform(g_enclave, &r, &seal_by_policy, &seal_v2, &report, &evidence, second),
            OE_OK);
  EXPECT_NE(std::memcmp(random, second, sizeof(random)), 0);  // fails with chance 2^-256
}
