/*
 * Support for the bridge code that runtime/edger/veil_edger.py generates: overflow-
 * checked size arithmetic and the 16-byte buffer layout both sides of a call share.
 * Not an Open Enclave API (the SDK has its own internal header at this path); only
 * generated code includes it.
 *
 * Layout of a marshalled call: the function's args struct at offset 0, then each
 * buffer parameter, in declaration order, at the next 16-byte-rounded offset. The
 * input buffer carries [in] and [in, out] data, the output buffer [out] and
 * [in, out] data. Both sides derive every offset from the sizes alone, so no offset
 * ever travels across the boundary.
 */
#ifndef VEIL_OE_EDGER8R_COMMON_H
#define VEIL_OE_EDGER8R_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../bits/defs.h"
#include "../bits/result.h"

OE_EXTERNC_BEGIN

/** Size of an args struct rounded up to 16 bytes: where the first buffer starts. */
#define VEIL_EDGER_HEADER_SIZE(T) ((sizeof(T) + 15) & ~(size_t)15)

/** Evaluate a call returning oe_result_t; on failure jump to the local label done. */
#define VEIL_EDGER_CHECK(EXPR)      \
    do                              \
    {                               \
        _result = (EXPR);           \
        if (_result != OE_OK)       \
            goto done;              \
    } while (0)

/** bytes = element_size * count, or OE_INTEGER_OVERFLOW if it does not fit size_t. */
OE_INLINE oe_result_t
veil_edger_buffer_bytes(uint64_t element_size, uint64_t count, size_t* bytes)
{
    uint64_t total;
    if (__builtin_mul_overflow(element_size, count, &total) ||
        total > (uint64_t)SIZE_MAX)
        return OE_INTEGER_OVERFLOW;
    *bytes = (size_t)total;
    return OE_OK;
}

/**
 * Caller side: place a buffer of `bytes` at *offset (already 16-byte aligned) and
 * advance *offset past it, rounded up to 16. Overflow gives OE_INTEGER_OVERFLOW.
 */
OE_INLINE oe_result_t
veil_edger_reserve(size_t* offset, size_t bytes, size_t* slot)
{
    size_t end, rounded;
    if (__builtin_add_overflow(*offset, bytes, &end) ||
        __builtin_add_overflow(end, (size_t)15, &rounded))
        return OE_INTEGER_OVERFLOW;
    *slot = *offset;
    *offset = rounded & ~(size_t)15;
    return OE_OK;
}

/**
 * Callee side: like veil_edger_reserve, but the buffer must also end inside a
 * received buffer of buffer_size bytes (OE_BUFFER_TOO_SMALL otherwise).
 */
OE_INLINE oe_result_t veil_edger_take(
    size_t buffer_size,
    size_t* offset,
    size_t bytes,
    size_t* slot)
{
    size_t end;
    if (__builtin_add_overflow(*offset, bytes, &end))
        return OE_INTEGER_OVERFLOW;
    if (end > buffer_size)
        return OE_BUFFER_TOO_SMALL;
    return veil_edger_reserve(offset, bytes, slot);
}

/**
 * An enclave's configuration (its .conf file, Open Enclave format). veil_add_enclave
 * compiles the .conf into the virtual image as `veil_venclave_config`, the way
 * oesign writes it into a signed SDK image, so the host cannot swap it.
 */
typedef struct veil_venclave_config
{
    uint32_t debug;
    uint32_t num_tcs;
    uint64_t num_heap_pages;
    uint64_t num_stack_pages;
    uint16_t product_id;
    uint16_t security_version;
} veil_venclave_config_t;

OE_EXTERNC_END

#endif /* VEIL_OE_EDGER8R_COMMON_H */
