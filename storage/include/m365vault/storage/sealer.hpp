#pragma once
// Sealing of tenant credentials (client secrets, private keys) before they reach
// the index. The catalog and the API only ever hold sealed bytes; the daemon backs
// this interface with the repository key (Repository::seal_secret/open_secret).
#include <string>
#include <string_view>

#include "m365vault/storage/repository.hpp"

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

// The daemon's sealer: the repository's secret subkey (Repository::seal_secret),
// so a tenant's credential opens only with the repository's passphrase or key.
class RepositorySealer final : public SecretSealer {
 public:
  explicit RepositorySealer(const Repository& repo) : repo_(repo) {}
  std::string seal(std::string_view context, std::string_view plaintext) override {
    return repo_.seal_secret(context, plaintext);
  }
  std::string open(std::string_view context, std::string_view sealed) override {
    return repo_.open_secret(context, sealed);
  }

 private:
  const Repository& repo_;
};

}  // namespace m365vault::storage
