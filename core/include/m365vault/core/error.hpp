#pragma once
// One registry of error codes for the whole service. Every failure that reaches a
// user (a CLI message, an HTTP problem+json body) carries one of these codes; the
// table in error.cpp maps each to its HTTP status and stable string code, and the
// same strings are listed in openapi.yaml.
#include <stdexcept>
#include <string>
#include <string_view>

namespace m365vault {

enum class Errc {
  internal,            // a bug or an unexpected state: 500
  bad_request,         // malformed input: 400
  invalid_config,      // configuration rejected: exit status 2
  not_found,           // no such resource or route: 404
  method_not_allowed,  // route exists, method does not: 405
  payload_too_large,   // body over the limit: 413
  headers_too_large,   // request header over the limit: 431
  unsupported_media,   // wrong Content-Type: 415
  unauthorized,        // missing or wrong credentials: 401
  forbidden,           // authenticated but not allowed: 403
  conflict,            // state conflict: 409
  unavailable,         // a dependency is down: 503
  overloaded,          // too many connections or requests: 503
  database,            // PostgreSQL failed: 503
  timeout,             // an operation ran past its deadline: 504
  too_many_requests,   // rate limited (repeated authentication failures): 429
  storage,             // the object store failed (I/O, full disk, S3 5xx after retries): 503
  storage_denied,      // the object store refused our credentials or permissions: 503
  data_corrupt,        // stored data failed authentication or its id check: 500
  wrong_key,           // no key slot of the repository opens with the given passphrase/key: 401
  range_not_satisfiable,  // a Range header outside the content: 416
};

struct ErrcInfo {
  int http_status;
  std::string_view code;   // stable, snake_case, as in openapi.yaml
  std::string_view title;  // short human title for problem+json
};

// The registry entry of a code. Never throws.
const ErrcInfo& info(Errc c) noexcept;

// A failure with a stable code and a message that names what failed
// (lower case, the thing in quotes, a hint where the user can act).
class Error : public std::runtime_error {
 public:
  Error(Errc code, std::string message) : std::runtime_error(std::move(message)), code_(code) {}
  Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

}  // namespace m365vault
