/*
 * veil virtual backend: the Open Enclave macros the rest of the API headers use.
 * Names follow the Open Enclave SDK so that code written against the SDK compiles
 * unchanged; this file is veil's own (the SDK is not present in this build).
 */
#ifndef VEIL_OE_BITS_DEFS_H
#define VEIL_OE_BITS_DEFS_H

#ifdef __cplusplus
#define OE_EXTERNC extern "C"
#define OE_EXTERNC_BEGIN extern "C" {
#define OE_EXTERNC_END }
#else
#define OE_EXTERNC
#define OE_EXTERNC_BEGIN
#define OE_EXTERNC_END
#endif

#ifndef OE_API_VERSION
#define OE_API_VERSION 2
#endif

/** Largest value of a four-byte enum tag (the SDK pins enums to 32 bits). */
#define OE_ENUM_MAX 0xffffffff

#define OE_PAGE_SIZE 0x1000

#define OE_UNUSED(P) (void)(P)
#define OE_COUNTOF(ARR) (sizeof(ARR) / sizeof((ARR)[0]))
#define OE_NO_RETURN __attribute__((__noreturn__))
#define OE_INLINE static __inline__

#ifdef __cplusplus
#define OE_STATIC_ASSERT(COND) static_assert(COND, #COND)
#else
#define OE_STATIC_ASSERT(COND) _Static_assert(COND, #COND)
#endif

#endif /* VEIL_OE_BITS_DEFS_H */
