// The EDL contract, enclave side: the trusted bridge declares the ecalls the
// enclave implements and the ocall stubs it calls, with oeedger8r's prototypes.
// Compiled into the image in both backends; a drifted prototype fails the build.
#include <openenclave/enclave.h>

#include <type_traits>

#include "veil_t.h"

#define VEIL_SAME_PROTOTYPE(fn, ...) \
  static_assert(std::is_same<decltype(&fn), __VA_ARGS__>::value, #fn " prototype drifted")

VEIL_SAME_PROTOTYPE(ecall_open_session, int (*)(uint64_t*));
VEIL_SAME_PROTOTYPE(ecall_train_step, int (*)(uint64_t, const double*, size_t, const int32_t*,
                                              size_t, veil_step_result_t*));
VEIL_SAME_PROTOTYPE(ecall_last_error, int (*)(uint64_t, char*, size_t));
VEIL_SAME_PROTOTYPE(ocall_log, oe_result_t (*)(int, const char*));
VEIL_SAME_PROTOTYPE(ocall_device_forward, oe_result_t (*)(int*, uint64_t, uint32_t, const double*,
                                                          size_t, size_t, double*, size_t, int));
VEIL_SAME_PROTOTYPE(ocall_device_forward_narrow,
                    oe_result_t (*)(int*, uint64_t, uint32_t, const float*, size_t, size_t, double*,
                                    size_t, int));
VEIL_SAME_PROTOTYPE(ocall_device_update_narrow,
                    oe_result_t (*)(int*, uint64_t, uint32_t, const float*, size_t, const float*,
                                    size_t, size_t));
VEIL_SAME_PROTOTYPE(ocall_device_download,
                    oe_result_t (*)(int*, uint64_t, uint32_t, double*, size_t));
