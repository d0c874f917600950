// Contract test, host side: the prototypes the generated runtime_test_u.h declares
// are exactly Open Enclave's (oeedger8r's) for this EDL. Compile-time only; the
// same assertions hold against the SDK's generator.
#include <type_traits>

#include "runtime_test_u.h"

namespace {

template <typename Expected, typename Actual>
constexpr bool same(Actual) {
  return std::is_same<Expected, Actual>::value;
}

static_assert(same<oe_result_t (*)(const char*, oe_enclave_type_t, uint32_t,
                                   const oe_enclave_setting_t*, uint32_t, oe_enclave_t**)>(
                  &oe_create_runtime_test_enclave),
              "oe_create_<name>_enclave");

// Ecall proxies the host calls: oe_result_t name(oe_enclave_t*, [R* _retval,] params...).
static_assert(same<oe_result_t (*)(oe_enclave_t*)>(&ecall_nop), "void ecalls have no _retval");
static_assert(same<oe_result_t (*)(oe_enclave_t*, int*, const int32_t*, size_t)>(&ecall_sum),
              "ecall_sum");
static_assert(same<oe_result_t (*)(oe_enclave_t*, int*, const uint8_t*, size_t, uint64_t*, int*,
                                   int*)>(&ecall_probe_in),
              "ecall_probe_in");
static_assert(same<oe_result_t (*)(oe_enclave_t*, uint32_t*, uint32_t*, size_t, uint32_t)>(
                  &ecall_fill),
              "ecall_fill");
static_assert(same<oe_result_t (*)(oe_enclave_t*, int*, double*, int, double)>(&ecall_scale),
              "ecall_scale");
static_assert(same<oe_result_t (*)(oe_enclave_t*, size_t*, const char*)>(&ecall_strlen),
              "ecall_strlen");
static_assert(same<oe_result_t (*)(oe_enclave_t*, int*, char*)>(&ecall_upper), "ecall_upper");
static_assert(same<oe_result_t (*)(oe_enclave_t*, uint64_t*, const uint8_t*, uint8_t*,
                                   int32_t (*)[3])>(&ecall_mix_key),
              "ecall_mix_key");
static_assert(same<oe_result_t (*)(oe_enclave_t*, rt_color*, const rt_point*, rt_point,
                                   rt_point*, rt_color, rt_segment*)>(&ecall_move),
              "ecall_move");
static_assert(same<oe_result_t (*)(oe_enclave_t*, int64_t*, const void*, uint16_t, void*)>(
                  &ecall_bytes),
              "ecall_bytes");
static_assert(same<oe_result_t (*)(oe_enclave_t*, bool*, unsigned long long, short, char,
                                   float)>(&ecall_is_even),
              "ecall_is_even");
static_assert(same<oe_result_t (*)(oe_enclave_t*, uint8_t*, size_t)>(&ecall_write_then_abort),
              "ecall_write_then_abort");
static_assert(same<oe_result_t (*)(oe_enclave_t*, int*, int)>(&ecall_throw), "ecall_throw");
static_assert(same<oe_result_t (*)(oe_enclave_t*, int*, int32_t*, int32_t*, int32_t*, int32_t*,
                                   uint8_t*)>(&ecall_platform),
              "ecall_platform");

// Ocalls the host implements: R name(params...).
static_assert(same<int (*)(const int32_t*, int32_t*, int32_t*, size_t, const char*, char*,
                           uint64_t)>(&ocall_transform),
              "ocall_transform");
static_assert(same<void (*)(void)>(&ocall_block), "ocall_block");
static_assert(same<int (*)(void)>(&ocall_reenter), "ocall_reenter");
static_assert(same<void (*)(const uint8_t*, rt_point*, uint8_t*)>(&ocall_record),
              "ocall_record");

static_assert(std::is_same<decltype(oe_result_str(OE_OK)), const char*>::value,
              "oe_result_str");

}  // namespace
