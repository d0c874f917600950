#include "seal.h"

#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>

#include "platform.h"

namespace veil::enclave {
namespace {

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

// AES-256-GCM in either direction: encrypting writes out and the tag,
// decrypting writes out and succeeds only if the tag authenticates ad and in.
bool gcm(bool encrypt, const uint8_t key[kSealKeyBytes], const uint8_t iv[kSealIvBytes],
         const uint8_t* ad, size_t ad_len, const uint8_t* in, size_t len, uint8_t* out,
         uint8_t tag[kSealTagBytes]) {
  if (ad_len > INT_MAX) return false;
  const int enc = encrypt ? 1 : 0;
  Ctx ctx(EVP_CIPHER_CTX_new());
  int written = 0;
  if (!ctx || EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr, enc) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kSealIvBytes, nullptr) != 1 ||
      EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, key, iv, enc) != 1 ||
      (ad_len && EVP_CipherUpdate(ctx.get(), nullptr, &written, ad, static_cast<int>(ad_len)) != 1))
    return false;
  // EVP takes int lengths: feed large buffers in parts.
  for (size_t done = 0; done < len;) {
    const int part = static_cast<int>(std::min<size_t>(len - done, size_t{1} << 30));
    if (EVP_CipherUpdate(ctx.get(), out + done, &written, in + done, part) != 1 || written != part)
      return false;
    done += static_cast<size_t>(part);
  }
  if (encrypt)
    return EVP_CipherFinal_ex(ctx.get(), out + len, &written) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kSealTagBytes, tag) == 1;
  return EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kSealTagBytes, tag) == 1 &&
         EVP_CipherFinal_ex(ctx.get(), out + len, &written) == 1;
}

}  // namespace

bool gcm_encrypt(const uint8_t key[kSealKeyBytes], const uint8_t iv[kSealIvBytes],
                 const uint8_t* ad, size_t ad_len, const uint8_t* plain, size_t len,
                 uint8_t* cipher, uint8_t* tag) {
  return gcm(true, key, iv, ad, ad_len, plain, len, cipher, tag);
}

bool gcm_decrypt(const uint8_t key[kSealKeyBytes], const uint8_t iv[kSealIvBytes],
                 const uint8_t* ad, size_t ad_len, const uint8_t* cipher, size_t len,
                 const uint8_t* tag_in, uint8_t* plain) {
  uint8_t tag[kSealTagBytes];
  std::memcpy(tag, tag_in, sizeof tag);  // read the host's bytes once
  const bool ok = gcm(false, key, iv, ad, ad_len, cipher, len, plain, tag);
  if (!ok) wipe(plain, len);  // never hand out unauthenticated plaintext
  return ok;
}

bool seal(const uint8_t key[kSealKeyBytes], const uint8_t* ad, size_t ad_len,
          const uint8_t* plain, size_t len, uint8_t* blob) {
  return secure_random(blob, kSealIvBytes) &&
         gcm_encrypt(key, blob, ad, ad_len, plain, len, blob + kSealIvBytes,
                     blob + kSealIvBytes + len);
}

bool unseal(const uint8_t key[kSealKeyBytes], const uint8_t* ad, size_t ad_len,
            const uint8_t* blob, size_t blob_len, uint8_t* plain) {
  if (blob_len < kSealOverhead) return false;
  const size_t len = blob_len - kSealOverhead;
  uint8_t iv[kSealIvBytes];
  std::memcpy(iv, blob, sizeof iv);
  return gcm_decrypt(key, iv, ad, ad_len, blob + kSealIvBytes, len, blob + kSealIvBytes + len,
                     plain);
}

}  // namespace veil::enclave
