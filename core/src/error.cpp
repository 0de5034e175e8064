#include "m365vault/core/error.hpp"

namespace m365vault {

const ErrcInfo& info(Errc c) noexcept {
  static const ErrcInfo kInternal{500, "internal", "Internal error"};
  static const ErrcInfo kBadRequest{400, "bad_request", "Bad request"};
  static const ErrcInfo kInvalidConfig{500, "invalid_config", "Invalid configuration"};
  static const ErrcInfo kNotFound{404, "not_found", "Not found"};
  static const ErrcInfo kMethod{405, "method_not_allowed", "Method not allowed"};
  static const ErrcInfo kTooLarge{413, "payload_too_large", "Payload too large"};
  static const ErrcInfo kHeaders{431, "headers_too_large", "Request header fields too large"};
  static const ErrcInfo kMedia{415, "unsupported_media_type", "Unsupported media type"};
  static const ErrcInfo kUnauthorized{401, "unauthorized", "Unauthorized"};
  static const ErrcInfo kForbidden{403, "forbidden", "Forbidden"};
  static const ErrcInfo kConflict{409, "conflict", "Conflict"};
  static const ErrcInfo kUnavailable{503, "unavailable", "Service unavailable"};
  static const ErrcInfo kOverloaded{503, "overloaded", "Server overloaded"};
  static const ErrcInfo kDatabase{503, "database_unavailable", "Database unavailable"};
  static const ErrcInfo kTimeout{504, "timeout", "Timed out"};
  static const ErrcInfo kTooMany{429, "too_many_requests", "Too many requests"};
  static const ErrcInfo kStorage{503, "storage_unavailable", "Object store unavailable"};
  static const ErrcInfo kStorageDenied{503, "storage_access_denied", "Object store refused access"};
  static const ErrcInfo kCorrupt{500, "data_corrupt", "Stored data is corrupt"};
  static const ErrcInfo kWrongKey{401, "wrong_repository_key", "Wrong repository passphrase or key"};
  static const ErrcInfo kRange{416, "range_not_satisfiable", "Range not satisfiable"};
  switch (c) {
    case Errc::internal: return kInternal;
    case Errc::bad_request: return kBadRequest;
    case Errc::invalid_config: return kInvalidConfig;
    case Errc::not_found: return kNotFound;
    case Errc::method_not_allowed: return kMethod;
    case Errc::payload_too_large: return kTooLarge;
    case Errc::headers_too_large: return kHeaders;
    case Errc::unsupported_media: return kMedia;
    case Errc::unauthorized: return kUnauthorized;
    case Errc::forbidden: return kForbidden;
    case Errc::conflict: return kConflict;
    case Errc::unavailable: return kUnavailable;
    case Errc::overloaded: return kOverloaded;
    case Errc::database: return kDatabase;
    case Errc::timeout: return kTimeout;
    case Errc::too_many_requests: return kTooMany;
    case Errc::storage: return kStorage;
    case Errc::storage_denied: return kStorageDenied;
    case Errc::data_corrupt: return kCorrupt;
    case Errc::wrong_key: return kWrongKey;
    case Errc::range_not_satisfiable: return kRange;
  }
  return kInternal;
}

}  // namespace m365vault
