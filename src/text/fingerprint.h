// The tokenizer fingerprint's hash: SHA-256 over length-prefixed fields, so no two different
// field lists hash the same bytes. Every pipeline component adds what decides its output.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/strings.h"

namespace ferry::text {

class Fingerprinter {
 public:
  Fingerprinter() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Fingerprinter() { EVP_MD_CTX_free(ctx_); }
  Fingerprinter(const Fingerprinter&) = delete;
  Fingerprinter& operator=(const Fingerprinter&) = delete;

  void Add(std::string_view field) {
    AddNumber(field.size());
    EVP_DigestUpdate(ctx_, field.data(), field.size());
  }
  void AddNumber(uint64_t n) {
    unsigned char bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(n >> (8 * i));
    EVP_DigestUpdate(ctx_, bytes, sizeof bytes);
  }
  std::string Hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx_, digest, &size);
    return LowerHex(std::string_view(reinterpret_cast<const char*>(digest), size));
  }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace ferry::text
