/* Types shared by the host and enclave sides, with Open Enclave's names and values. */
#ifndef VEIL_OE_BITS_TYPES_H
#define VEIL_OE_BITS_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "defs.h"

OE_EXTERNC_BEGIN

/** The type argument of oe_create_enclave(). */
typedef enum _oe_enclave_type
{
    OE_ENCLAVE_TYPE_AUTO = 1,
    OE_ENCLAVE_TYPE_SGX = 2,
    OE_ENCLAVE_TYPE_OPTEE = 3,
    __OE_ENCLAVE_TYPE_MAX = OE_ENUM_MAX,
} oe_enclave_type_t;

/** Opaque handle to a created enclave. */
typedef struct _oe_enclave oe_enclave_t;

/** Identity a seal key is derived from. */
typedef enum _oe_seal_policy
{
    OE_SEAL_POLICY_UNIQUE = 1,
    OE_SEAL_POLICY_PRODUCT = 2,
    __OE_SEAL_POLICY_MAX = OE_ENUM_MAX,
} oe_seal_policy_t;

OE_EXTERNC_END

#endif /* VEIL_OE_BITS_TYPES_H */
