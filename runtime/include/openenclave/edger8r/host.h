/* Host-side entry points used by generated <name>_u.c files (virtual backend). */
#ifndef VEIL_OE_EDGER8R_HOST_H
#define VEIL_OE_EDGER8R_HOST_H

#include "../host.h"
#include "common.h"

OE_EXTERNC_BEGIN

/**
 * Run ecall function_id of the enclave. The runtime copies input_buffer into
 * enclave memory, runs the enclave's handler and copies its output back into
 * output_buffer.
 *
 * @returns OE_OK, or OE_INVALID_PARAMETER (NULL or terminated enclave, bad
 * buffers), OE_NOT_FOUND (unknown function id), OE_ENCLAVE_ABORTING,
 * OE_REENTRANT_ECALL (called from inside one of this enclave's ocalls),
 * OE_OUT_OF_THREADS (NumTCS ecalls already running), OE_OUT_OF_MEMORY (the
 * buffers do not fit the enclave arena) or the handler's own failure.
 */
oe_result_t oe_call_enclave_function(
    oe_enclave_t* enclave,
    uint32_t function_id,
    const void* input_buffer,
    size_t input_buffer_size,
    void* output_buffer,
    size_t output_buffer_size,
    size_t* output_bytes_written);

OE_EXTERNC_END

#endif /* VEIL_OE_EDGER8R_HOST_H */
