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

// EVP takes int lengths: feed large buffers in parts.
template <typename Update>
bool in_parts(const uint8_t* in, uint8_t* out, size_t len, Update update) {
  for (size_t done = 0; done < len;) {
    const int part = static_cast<int>(std::min<size_t>(len - done, size_t{1} << 30));
    int written = 0;
    if (update(out + done, &written, in + done, part) != 1 || written != part) return false;
    done += static_cast<size_t>(part);
  }
  return true;
}

}  // namespace

bool gcm_encrypt(const uint8_t key[kSealKeyBytes], const uint8_t iv[kSealIvBytes],
                 const uint8_t* ad, size_t ad_len, const uint8_t* plain, size_t len,
                 uint8_t* cipher, uint8_t* tag) {
  if (ad_len > INT_MAX) return false;
  Ctx ctx(EVP_CIPHER_CTX_new());
  int written = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kSealIvBytes, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key, iv) != 1 ||
      (ad_len && EVP_EncryptUpdate(ctx.get(), nullptr, &written, ad, static_cast<int>(ad_len)) != 1))
    return false;
  if (!in_parts(plain, cipher, len, [&](uint8_t* o, int* w, const uint8_t* i, int n) {
        return EVP_EncryptUpdate(ctx.get(), o, w, i, n);
      }))
    return false;
  return EVP_EncryptFinal_ex(ctx.get(), cipher + len, &written) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kSealTagBytes, tag) == 1;
}

bool gcm_decrypt(const uint8_t key[kSealKeyBytes], const uint8_t iv[kSealIvBytes],
                 const uint8_t* ad, size_t ad_len, const uint8_t* cipher, size_t len,
                 const uint8_t* tag_in, uint8_t* plain) {
  if (ad_len > INT_MAX) return false;
  uint8_t tag[kSealTagBytes];
  std::memcpy(tag, tag_in, sizeof tag);  // read the host's bytes once
  Ctx ctx(EVP_CIPHER_CTX_new());
  int written = 0;
  bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kSealIvBytes, nullptr) == 1 &&
            EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key, iv) == 1 &&
            (ad_len == 0 ||
             EVP_DecryptUpdate(ctx.get(), nullptr, &written, ad, static_cast<int>(ad_len)) == 1) &&
            in_parts(cipher, plain, len, [&](uint8_t* o, int* w, const uint8_t* i, int n) {
              return EVP_DecryptUpdate(ctx.get(), o, w, i, n);
            }) &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kSealTagBytes, tag) == 1 &&
            EVP_DecryptFinal_ex(ctx.get(), plain + len, &written) > 0;
  if (!ok) wipe(plain, len);  // never hand out unauthenticated plaintext
  return ok;
}

bool seal(const uint8_t key[kSealKeyBytes], const uint8_t* iv, const uint8_t* ad, size_t ad_len,
          const uint8_t* plain, size_t len, uint8_t* blob) {
  if (iv) std::memcpy(blob, iv, kSealIvBytes);
  else if (!secure_random(blob, kSealIvBytes)) return false;
  return gcm_encrypt(key, blob, ad, ad_len, plain, len, blob + kSealIvBytes,
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
