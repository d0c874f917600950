/*
 * The host-side Open Enclave API subset veil uses, implemented by veil's virtual
 * runtime (runtime/src/vhost.cpp). Names, types and values follow the Open Enclave
 * SDK so host code compiles unchanged against either. See runtime/README.md for
 * what the virtual backend does and does not protect.
 */
#ifndef VEIL_OE_HOST_H
#define VEIL_OE_HOST_H

#ifdef VEIL_OE_ENCLAVE_H
#error "enclave.h and host.h must not be included in the same compilation unit."
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bits/defs.h"
#include "bits/result.h"
#include "bits/types.h"

OE_EXTERNC_BEGIN

/** Create a debuggable enclave; refused (OE_DEBUG_DOWNGRADE) if the image's
 *  configuration says Debug=0. */
#define OE_ENCLAVE_FLAG_DEBUG 0x00000001

/** Open Enclave's SGX simulation mode. The virtual backend is not that mode and
 *  refuses the flag with OE_UNSUPPORTED. */
#define OE_ENCLAVE_FLAG_SIMULATE 0x00000002

#define OE_ENCLAVE_FLAG_RESERVED \
    (~(OE_ENCLAVE_FLAG_DEBUG | OE_ENCLAVE_FLAG_SIMULATE))

/** Kinds of extra settings for oe_create_enclave(). */
typedef enum _oe_enclave_setting_type
{
    OE_ENCLAVE_SETTING_CONTEXT_SWITCHLESS = 0xdc73a628,
    __OE_ENCLAVE_SETTING_MAX = OE_ENUM_MAX,
} oe_enclave_setting_type_t;

/** Switchless-call tuning (accepted by the type system; the virtual backend
 *  has no switchless calls and refuses every setting with OE_UNSUPPORTED). */
typedef struct _oe_enclave_setting_context_switchless
{
    size_t max_host_workers;
    size_t max_enclave_workers;
} oe_enclave_setting_context_switchless_t;

typedef struct _oe_enclave_setting
{
    oe_enclave_setting_type_t setting_type;
    union
    {
        const oe_enclave_setting_context_switchless_t* context_switchless_setting;
    } u;
} oe_enclave_setting_t;

/**
 * Host-side handler of one ocall, as generated into <name>_u.c. It unpacks
 * input_buffer, calls the host function and packs its results into
 * output_buffer.
 */
typedef oe_result_t (*oe_ocall_func_t)(
    const uint8_t* input_buffer,
    size_t input_buffer_size,
    uint8_t* output_buffer,
    size_t output_buffer_size,
    size_t* output_bytes_written);

/** Name of one ecall, in the order of the host's function ids. */
typedef struct _oe_ecall_info_t
{
    const char* name;
} oe_ecall_info_t;

/**
 * Load an enclave image and initialize it. The generated
 * oe_create_<name>_enclave() calls this with its ocall and ecall tables.
 *
 * @returns OE_OK; OE_INVALID_PARAMETER for a bad argument; OE_NOT_FOUND if path
 * does not exist; OE_UNSUPPORTED for OE_ENCLAVE_FLAG_SIMULATE or any setting;
 * OE_DEBUG_DOWNGRADE for OE_ENCLAVE_FLAG_DEBUG on a Debug=0 image;
 * OE_UNSUPPORTED_ENCLAVE_IMAGE if path is not a veil virtual enclave image;
 * OE_OUT_OF_MEMORY if the enclave arena cannot be mapped; OE_FAILURE otherwise.
 */
oe_result_t oe_create_enclave(
    const char* path,
    oe_enclave_type_t type,
    uint32_t flags,
    const oe_enclave_setting_t* settings,
    uint32_t setting_count,
    const oe_ocall_func_t* ocall_table,
    uint32_t ocall_count,
    const oe_ecall_info_t* ecall_name_table,
    uint32_t ecall_count,
    oe_enclave_t** enclave);

/**
 * Terminate an enclave and release its memory. Waits for ecalls running on other
 * threads to return. A NULL or already terminated handle gives
 * OE_INVALID_PARAMETER; calling it from inside one of the enclave's own ocalls
 * gives OE_BUSY.
 */
oe_result_t oe_terminate_enclave(oe_enclave_t* enclave);

OE_EXTERNC_END

#endif /* VEIL_OE_HOST_H */
