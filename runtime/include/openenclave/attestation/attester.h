/*
 * Evidence generation, with Open Enclave's prototypes. The virtual backend has no
 * hardware root of trust, so no evidence exists: oe_get_evidence returns
 * OE_UNSUPPORTED (and so do the attester's setup functions, so a caller cannot
 * mistake the backend for one that attests).
 */
#ifndef VEIL_OE_ATTESTATION_ATTESTER_H
#define VEIL_OE_ATTESTATION_ATTESTER_H

#ifdef VEIL_OE_HOST_H
#error "attester.h is an enclave-side header."
#endif

#include "../bits/defs.h"
#include "../bits/evidence.h"
#include "../bits/result.h"
#include "../bits/types.h"

OE_EXTERNC_BEGIN

oe_result_t oe_attester_initialize(void);

oe_result_t oe_attester_shutdown(void);

oe_result_t oe_get_evidence(
    const oe_uuid_t* format_id,
    uint32_t flags,
    const void* custom_claims_buffer,
    size_t custom_claims_buffer_size,
    const void* optional_parameters,
    size_t optional_parameters_size,
    uint8_t** evidence_buffer,
    size_t* evidence_buffer_size,
    uint8_t** endorsements_buffer,
    size_t* endorsements_buffer_size);

oe_result_t oe_free_evidence(uint8_t* evidence_buffer);

oe_result_t oe_free_endorsements(uint8_t* endorsements_buffer);

OE_EXTERNC_END

#endif /* VEIL_OE_ATTESTATION_ATTESTER_H */
