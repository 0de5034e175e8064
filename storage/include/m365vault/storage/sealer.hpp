#pragma once
// Sealing of tenant credentials (client secrets, private keys) before they reach
// the index. The catalog and the API only ever hold sealed bytes; the daemon backs
// this interface with the repository key (Repository::seal_secret/open_secret).
#include <string>
#include <string_view>

namespace m365vault::storage {

class SecretSealer {
 public:
  virtual ~SecretSealer() = default;
  // Seals `plaintext` bound to `context` (a sealed value opens only under the same
  // context, so one tenant's sealed secret cannot be swapped into another's row).
  // Throws Error on failure; never logs the plaintext.
  virtual std::string seal(std::string_view context, std::string_view plaintext) = 0;
  // The plaintext; throws Error(Errc::data_corrupt or wrong_key) when `sealed`
  // does not open under `context` with this key.
  virtual std::string open(std::string_view context, std::string_view sealed) = 0;
};

}  // namespace m365vault::storage
