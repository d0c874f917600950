// The EDL contract, host side: the generated bridge must expose exactly the
// prototypes Open Enclave's oeedger8r would, so host/ compiles against either.
// Compiled in both backends; a mismatch is a compile error.
#include <openenclave/host.h>

#include <type_traits>

#include "veil_u.h"

#define VEIL_SAME_PROTOTYPE(fn, ...) \
  static_assert(std::is_same<decltype(&fn), __VA_ARGS__>::value, #fn " prototype drifted")

VEIL_SAME_PROTOTYPE(oe_create_veil_enclave,
                    oe_result_t (*)(const char*, oe_enclave_type_t, uint32_t,
                                    const oe_enclave_setting_t*, uint32_t, oe_enclave_t**));
VEIL_SAME_PROTOTYPE(ecall_open_session, oe_result_t (*)(oe_enclave_t*, int*, uint64_t*));
VEIL_SAME_PROTOTYPE(ecall_close_session, oe_result_t (*)(oe_enclave_t*, int*, uint64_t));
VEIL_SAME_PROTOTYPE(ecall_get_info, oe_result_t (*)(oe_enclave_t*, int*, veil_info_t*));
VEIL_SAME_PROTOTYPE(ecall_last_error,
                    oe_result_t (*)(oe_enclave_t*, int*, uint64_t, char*, size_t));
VEIL_SAME_PROTOTYPE(ecall_train_init,
                    oe_result_t (*)(oe_enclave_t*, int*, uint64_t, const veil_train_config_t*,
                                    const veil_layer_spec_t*, size_t));
VEIL_SAME_PROTOTYPE(ecall_train_step,
                    oe_result_t (*)(oe_enclave_t*, int*, uint64_t, const double*, size_t,
                                    const int32_t*, size_t, veil_step_result_t*));
VEIL_SAME_PROTOTYPE(ecall_train_join, oe_result_t (*)(oe_enclave_t*, int*, uint64_t,
                                                      const uint8_t*, size_t, uint32_t, uint32_t));
VEIL_SAME_PROTOTYPE(ecall_predict, oe_result_t (*)(oe_enclave_t*, int*, uint64_t, const double*,
                                                   size_t, size_t, double*, size_t));
VEIL_SAME_PROTOTYPE(ecall_halve_lr, oe_result_t (*)(oe_enclave_t*, int*, uint64_t));
VEIL_SAME_PROTOTYPE(ecall_export_weights,
                    oe_result_t (*)(oe_enclave_t*, int*, uint64_t, uint32_t, double*, size_t));
VEIL_SAME_PROTOTYPE(ecall_session_stats,
                    oe_result_t (*)(oe_enclave_t*, int*, uint64_t, veil_session_stats_t*));
VEIL_SAME_PROTOTYPE(ecall_train_checkpoint_size,
                    oe_result_t (*)(oe_enclave_t*, int*, uint64_t, uint64_t*));
VEIL_SAME_PROTOTYPE(ecall_train_checkpoint,
                    oe_result_t (*)(oe_enclave_t*, int*, uint64_t, const uint8_t*, size_t, uint8_t*,
                                    size_t, uint64_t*));
VEIL_SAME_PROTOTYPE(ecall_train_restore,
                    oe_result_t (*)(oe_enclave_t*, int*, uint64_t, const veil_train_config_t*,
                                    const veil_layer_spec_t*, size_t, const uint8_t*, size_t,
                                    const uint8_t*, size_t));
VEIL_SAME_PROTOTYPE(ecall_inference_init,
                    oe_result_t (*)(oe_enclave_t*, int*, uint64_t, const veil_inference_config_t*,
                                    const veil_layer_spec_t*, size_t));
VEIL_SAME_PROTOTYPE(ecall_inference_load_layer, oe_result_t (*)(oe_enclave_t*, int*, uint64_t,
                                                                uint32_t, const double*, size_t));
VEIL_SAME_PROTOTYPE(ecall_inference_precompute,
                    oe_result_t (*)(oe_enclave_t*, int*, uint64_t, uint32_t, uint8_t*, size_t));
VEIL_SAME_PROTOTYPE(ecall_inference_predict,
                    oe_result_t (*)(oe_enclave_t*, int*, uint64_t, const double*, size_t, size_t,
                                    const uint8_t*, size_t, double*, size_t));
VEIL_SAME_PROTOTYPE(ecall_inference_status,
                    oe_result_t (*)(oe_enclave_t*, int*, uint64_t, veil_inference_status_t*));

// Ocalls are implemented by the host with plain C prototypes.
VEIL_SAME_PROTOTYPE(ocall_log, void (*)(int, const char*));
VEIL_SAME_PROTOTYPE(ocall_device_forward, int (*)(uint64_t, uint32_t, const double*, size_t,
                                                  size_t, double*, size_t, int));
VEIL_SAME_PROTOTYPE(ocall_device_update, int (*)(uint64_t, uint32_t, const double*, size_t,
                                                 const double*, size_t, size_t));
VEIL_SAME_PROTOTYPE(ocall_device_backward_narrow, int (*)(uint64_t, uint32_t, const float*,
                                                          size_t, size_t, double*, size_t, int));
VEIL_SAME_PROTOTYPE(ocall_device_update_narrow, int (*)(uint64_t, uint32_t, const float*, size_t,
                                                        const float*, size_t, size_t));
VEIL_SAME_PROTOTYPE(ocall_device_max_abs, int (*)(uint64_t, uint32_t, double*));
VEIL_SAME_PROTOTYPE(ocall_exchange, int (*)(uint64_t, const uint8_t*, size_t, uint8_t*, size_t));

// The status values cross the boundary as ints and must keep their numbers.
static_assert(VEIL_OK == 0 && VEIL_ERR_VERIFICATION == 3, "veil_status_t numbering drifted");
static_assert(sizeof(((veil_info_t*)nullptr)->backend) == 16, "veil_info_t.backend size");
