#pragma once
// Authenticated encryption of enclave state handed to the host to keep
// (AES-256-GCM from the platform's libcrypto). A blob is IV || ciphertext ||
// tag; the associated data binds it to where it belongs, so a blob moved to
// another session, layer, slot or model fails to open.
#include <cstddef>
#include <cstdint>

namespace veil::enclave {

constexpr size_t kSealKeyBytes = 32;
constexpr size_t kSealIvBytes = 12;
constexpr size_t kSealTagBytes = 16;
constexpr size_t kSealOverhead = kSealIvBytes + kSealTagBytes;

/**
 * AES-256-GCM with a caller-chosen IV (it must never repeat under one key):
 * cipher gets len bytes and tag kSealTagBytes.
 */
bool gcm_encrypt(const uint8_t key[kSealKeyBytes], const uint8_t iv[kSealIvBytes],
                 const uint8_t* ad, size_t ad_len, const uint8_t* plain, size_t len,
                 uint8_t* cipher, uint8_t* tag);

/** Inverse of gcm_encrypt; false (plain wiped) unless the tag authenticates ad and cipher. */
bool gcm_decrypt(const uint8_t key[kSealKeyBytes], const uint8_t iv[kSealIvBytes],
                 const uint8_t* ad, size_t ad_len, const uint8_t* cipher, size_t len,
                 const uint8_t* tag, uint8_t* plain);

/**
 * Encrypt plain (len bytes) into blob (len + kSealOverhead bytes) under key,
 * authenticating ad too, with a random IV.
 */
bool seal(const uint8_t key[kSealKeyBytes], const uint8_t* ad, size_t ad_len,
          const uint8_t* plain, size_t len, uint8_t* blob);

/**
 * Decrypt blob (blob_len bytes) into plain (blob_len - kSealOverhead bytes);
 * false when the blob is too short or the tag does not authenticate ad and the
 * ciphertext under key (plain is then wiped).
 */
bool unseal(const uint8_t key[kSealKeyBytes], const uint8_t* ad, size_t ad_len,
            const uint8_t* blob, size_t blob_len, uint8_t* plain);

}  // namespace veil::enclave
