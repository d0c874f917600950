/*
 * Host-side introspection that exists only in veil's virtual backend (no Open
 * Enclave counterpart). Runtime tests use it; product code should not.
 */
#ifndef VEIL_VIRTUAL_HOST_H
#define VEIL_VIRTUAL_HOST_H

#include <openenclave/host.h>

OE_EXTERNC_BEGIN

typedef struct veil_virtual_enclave_info
{
    uint32_t debug;
    uint32_t num_tcs;
    uint64_t num_heap_pages;
    uint64_t num_stack_pages;
    uint16_t product_id;
    uint16_t security_version;
    /** The enclave arena: the memory oe_is_within_enclave() reports as inside. */
    const void* arena_base;
    size_t arena_size;
} veil_virtual_enclave_info_t;

/** Fill *info for a live enclave; OE_INVALID_PARAMETER otherwise. */
oe_result_t veil_virtual_get_enclave_info(
    oe_enclave_t* enclave,
    veil_virtual_enclave_info_t* info);

OE_EXTERNC_END

#endif /* VEIL_VIRTUAL_HOST_H */
