/* Attestation format identifiers, as in Open Enclave. */
#ifndef VEIL_OE_BITS_EVIDENCE_H
#define VEIL_OE_BITS_EVIDENCE_H

#include "defs.h"
#include "types.h"

OE_EXTERNC_BEGIN

#define OE_UUID_SIZE 16

typedef struct _oe_uuid_t
{
    uint8_t b[OE_UUID_SIZE];
} oe_uuid_t;

OE_EXTERNC_END

#endif /* VEIL_OE_BITS_EVIDENCE_H */
