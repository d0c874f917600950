/*
 * The enclave-side Open Enclave API subset veil uses, implemented by veil's virtual
 * trusted runtime (runtime/src/vtrusted.cpp) with the SDK's names, prototypes and
 * result codes. Sealing keys and reports do not exist in the virtual backend: those
 * functions return OE_UNSUPPORTED.
 */
#ifndef VEIL_OE_ENCLAVE_H
#define VEIL_OE_ENCLAVE_H

#ifdef VEIL_OE_HOST_H
#error "enclave.h and host.h must not be included in the same compilation unit."
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bits/defs.h"
#include "bits/result.h"
#include "bits/types.h"

OE_EXTERNC_BEGIN

/**
 * True if [ptr, ptr + size) lies entirely inside enclave memory. In the virtual
 * backend enclave memory is the enclave arena: the region the runtime copies ecall
 * inputs and outputs into. NULL or a wrapping range gives false.
 */
bool oe_is_within_enclave(const void* ptr, size_t size);

/**
 * True if [ptr, ptr + size) lies entirely outside enclave memory (the arena in the
 * virtual backend). NULL or a wrapping range gives false.
 */
bool oe_is_outside_enclave(const void* ptr, size_t size);

/** Fill data with cryptographically secure random bytes. */
oe_result_t oe_random(void* data, size_t size);

/**
 * Abort the enclave: the current ecall returns OE_ENCLAVE_ABORTING and every later
 * ecall and ocall fails with OE_ENCLAVE_ABORTING. Does not return.
 */
OE_NO_RETURN void oe_abort(void);

/** Allocate, zero-allocate and free memory outside the enclave (host memory). */
void* oe_host_malloc(size_t size);
void* oe_host_calloc(size_t nmemb, size_t size);
void oe_host_free(void* ptr);

/** Seal key derivation. Unavailable in the virtual backend: OE_UNSUPPORTED. */
oe_result_t oe_get_seal_key_by_policy_v2(
    oe_seal_policy_t seal_policy,
    uint8_t** key_buffer,
    size_t* key_buffer_size,
    uint8_t** key_info,
    size_t* key_info_size);

/** Seal key re-derivation from key info. Virtual backend: OE_UNSUPPORTED. */
oe_result_t oe_get_seal_key_v2(
    const uint8_t* key_info,
    size_t key_info_size,
    uint8_t** key_buffer,
    size_t* key_buffer_size);

/** Release buffers from the seal key functions (NULL is accepted). */
void oe_free_seal_key(uint8_t* key_buffer, uint8_t* key_info);

#define oe_get_seal_key_by_policy oe_get_seal_key_by_policy_v2
#define oe_get_seal_key oe_get_seal_key_v2

/** Report flag: a report another platform can verify. */
#define OE_REPORT_FLAGS_REMOTE_ATTESTATION 0x00000001

/** Enclave reports. Unavailable in the virtual backend: OE_UNSUPPORTED. */
oe_result_t oe_get_report_v2(
    uint32_t flags,
    const uint8_t* report_data,
    size_t report_data_size,
    const void* opt_params,
    size_t opt_params_size,
    uint8_t** report_buffer,
    size_t* report_buffer_size);

/** Release a report buffer (NULL is accepted). */
void oe_free_report(uint8_t* report_buffer);

#define oe_get_report oe_get_report_v2

OE_EXTERNC_END

#endif /* VEIL_OE_ENCLAVE_H */
