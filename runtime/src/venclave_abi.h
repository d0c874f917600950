/*
 * The binary interface between veil's virtual host runtime (vhost.cpp) and the
 * trusted runtime inside an enclave image (vtrusted.cpp). The image exports exactly
 * one symbol, VEIL_VENCLAVE_ENTRY_SYMBOL; everything else crosses through the two
 * tables below, so the enclave never resolves a host symbol and the host never
 * resolves an enclave symbol beyond the entry point.
 */
#ifndef VEIL_RUNTIME_VENCLAVE_ABI_H
#define VEIL_RUNTIME_VENCLAVE_ABI_H

#include <openenclave/edger8r/common.h>

OE_EXTERNC_BEGIN

#define VEIL_VENCLAVE_ABI_VERSION 1u
#define VEIL_VENCLAVE_ENTRY_SYMBOL "veil_venclave_entry"

/** Size of the header the enclave puts before an ocall's buffers in host memory;
 *  the host writes the ocall's output_bytes_written there. */
#define VEIL_VHOST_OCALL_HEADER_SIZE 16u

/** What the host hands the enclave at initialization. */
typedef struct veil_vhost_imports
{
    uint32_t abi_version;
    uint32_t struct_size;
    /** The host's oe_enclave_t*, handed back verbatim on every callback. */
    void* context;
    /** The enclave arena: memory the host mapped for the enclave and then leaves
     *  alone. The trusted runtime allocates every marshalling buffer here. */
    void* arena_base;
    size_t arena_size;
    /** Run ocall function_id. All pointers are host memory. */
    oe_result_t (*call_host)(
        void* context,
        uint32_t function_id,
        const void* input,
        size_t input_size,
        void* output,
        size_t output_size,
        size_t* output_bytes_written);
    void* (*host_malloc)(void* context, size_t size);
    void (*host_free)(void* context, void* ptr);
    /** Tell the host the enclave aborted (oe_abort). */
    void (*notify_abort)(void* context);
} veil_vhost_imports_t;

/** What the enclave image offers the host. */
typedef struct veil_venclave_exports
{
    uint32_t abi_version;
    uint32_t struct_size;
    const veil_venclave_config_t* config;
    uint32_t ecall_count;
    /** Name of ecall index (0 <= index < ecall_count), NULL otherwise. */
    const char* (*ecall_name)(uint32_t index);
    oe_result_t (*initialize)(const veil_vhost_imports_t* imports);
    /** Run ecall index. host_input/host_output/output_bytes_written are host
     *  memory; the enclave copies in, runs the handler, copies out. */
    oe_result_t (*call_enclave)(
        uint32_t index,
        const void* host_input,
        size_t input_size,
        void* host_output,
        size_t output_size,
        size_t* output_bytes_written);
    void (*finalize)(void);
} veil_venclave_exports_t;

/** The entry point's type: NULL if the image does not speak host_abi_version. */
typedef const veil_venclave_exports_t* (*veil_venclave_entry_t)(
    uint32_t host_abi_version);

OE_EXTERNC_END

#endif /* VEIL_RUNTIME_VENCLAVE_ABI_H */
