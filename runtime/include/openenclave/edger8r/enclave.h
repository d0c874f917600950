/* Enclave-side entry points used by generated <name>_t.c files (virtual backend). */
#ifndef VEIL_OE_EDGER8R_ENCLAVE_H
#define VEIL_OE_EDGER8R_ENCLAVE_H

#include "../enclave.h"
#include "common.h"

#include <string.h>

OE_EXTERNC_BEGIN

/** Enclave-side handler of one ecall, as generated into <name>_t.c. */
typedef oe_result_t (*oe_ecall_func_t)(
    const uint8_t* input_buffer,
    size_t input_buffer_size,
    uint8_t* output_buffer,
    size_t output_buffer_size,
    size_t* output_bytes_written);

typedef struct veil_edger_ecall_entry
{
    const char* name;
    oe_ecall_func_t handler;
} veil_edger_ecall_entry_t;

typedef struct veil_edger_ecall_table
{
    uint32_t count;
    const veil_edger_ecall_entry_t* entries;
} veil_edger_ecall_table_t;

/** The image's ecalls; defined by the generated <name>_t.c. */
extern const veil_edger_ecall_table_t veil_edger_ecall_table;

/** The image's configuration; generated from its .conf by veil_add_enclave. */
extern const veil_venclave_config_t veil_venclave_config;

/**
 * Run ocall function_id on the host. The runtime copies input_buffer out to host
 * memory and copies the host's output back into output_buffer.
 */
oe_result_t oe_call_host_function(
    uint32_t function_id,
    const void* input_buffer,
    size_t input_buffer_size,
    void* output_buffer,
    size_t output_buffer_size,
    size_t* output_bytes_written);

/**
 * The generated ocall stubs' transport: like oe_call_host_function, but both
 * blocks must come from veil_edger_ocall_alloc (host memory) and are handed to
 * the host without copies.
 */
oe_result_t veil_edger_call_host(
    uint32_t function_id,
    const void* input_buffer,
    size_t input_buffer_size,
    void* output_buffer,
    size_t output_buffer_size,
    size_t* output_bytes_written);

/** Host memory for an ocall's marshalling block (not zeroed; NULL when out of memory). */
void* veil_edger_ocall_alloc(size_t size);

void veil_edger_ocall_free(void* ptr);

/** Zero from end up to the next 16-byte boundary (not past limit): padding of a block. */
static inline void veil_edger_zero_tail(uint8_t* base, size_t end, size_t limit)
{
    size_t rounded = (end + 15) & ~(size_t)15;
    if (rounded > limit)
        rounded = limit;
    if (rounded > end)
        memset(base + end, 0, rounded - end);
}

OE_EXTERNC_END

#endif /* VEIL_OE_EDGER8R_ENCLAVE_H */
