// Contract test, enclave side: the prototypes the generated runtime_test_t.h
// declares are exactly Open Enclave's (oeedger8r's) for this EDL. Compile-time only.
#include <type_traits>

#include "runtime_test_t.h"

namespace {

template <typename Expected, typename Actual>
constexpr bool same(Actual) {
  return std::is_same<Expected, Actual>::value;
}

// Ecalls the enclave implements: R name(params...).
static_assert(same<void (*)(void)>(&ecall_nop), "ecall_nop");
static_assert(same<int (*)(const int32_t*, size_t)>(&ecall_sum), "ecall_sum");
static_assert(same<int (*)(const uint8_t*, size_t, uint64_t*, int*, int*)>(&ecall_probe_in),
              "ecall_probe_in");
static_assert(same<uint32_t (*)(uint32_t*, size_t, uint32_t)>(&ecall_fill), "ecall_fill");
static_assert(same<int (*)(double*, int, double)>(&ecall_scale), "ecall_scale");
static_assert(same<size_t (*)(const char*)>(&ecall_strlen), "ecall_strlen");
static_assert(same<int (*)(char*)>(&ecall_upper), "ecall_upper");
static_assert(same<uint64_t (*)(const uint8_t*, uint8_t*, int32_t (*)[3])>(&ecall_mix_key),
              "fixed arrays decay like C parameters");
static_assert(same<rt_color (*)(const rt_point*, rt_point, rt_point*, rt_color, rt_segment*)>(
                  &ecall_move),
              "ecall_move");
static_assert(same<int64_t (*)(const void*, uint16_t, void*)>(&ecall_bytes), "ecall_bytes");
static_assert(same<bool (*)(unsigned long long, short, char, float)>(&ecall_is_even),
              "ecall_is_even");
static_assert(same<void (*)(uint8_t*, size_t)>(&ecall_write_then_abort),
              "ecall_write_then_abort");
static_assert(same<int (*)(int)>(&ecall_throw), "ecall_throw");

// Ocall proxies the enclave calls: oe_result_t name([R* _retval,] params...).
static_assert(same<oe_result_t (*)(int*, const int32_t*, int32_t*, int32_t*, size_t,
                                   const char*, char*, uint64_t)>(&ocall_transform),
              "ocall_transform");
static_assert(same<oe_result_t (*)(void)>(&ocall_block), "void ocalls have no _retval");
static_assert(same<oe_result_t (*)(int*)>(&ocall_reenter), "ocall_reenter");
static_assert(same<oe_result_t (*)(const uint8_t*, rt_point*, uint8_t*)>(&ocall_record),
              "ocall_record");

// User types keep their EDL layout and values.
static_assert(RT_RED == 0 && RT_GREEN == 1 && RT_BLUE == 7 && RT_CYAN == 8, "rt_color");
static_assert(sizeof(rt_point) == 16, "rt_point: 2 x int32 + 4 bytes + enum");
static_assert(sizeof(((rt_segment*)nullptr)->weights) == 6 * sizeof(double), "weights[2][3]");

}  // namespace
