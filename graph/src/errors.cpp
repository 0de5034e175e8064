#include "m365vault/graph/errors.hpp"

#include <boost/beast/core/string.hpp>
#include <nlohmann/json.hpp>

#include <initializer_list>

namespace m365vault::graph {

namespace {

using boost::beast::iequals;

bool any_code(const GraphError& e, std::initializer_list<std::string_view> codes) noexcept {
  for (auto c : codes)
    if (e.has_code(c)) return true;
  return false;
}

Errc errc_for(int status) {
  switch (status) {
    case 400: return Errc::bad_request;
    case 401: return Errc::unauthorized;
    case 403: return Errc::forbidden;
    case 404:
    case 410: return Errc::not_found;
    case 409:
    case 412: return Errc::conflict;
    case 413: return Errc::payload_too_large;
    case 429: return Errc::too_many_requests;
    case 504: return Errc::timeout;
    default: return status >= 500 ? Errc::unavailable : Errc::bad_request;
  }
}

std::string str_of(const nlohmann::json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

}  // namespace

GraphError::GraphError(int status, std::string code, std::string inner_code, std::string message,
                       std::string request_id, std::optional<std::chrono::milliseconds> retry_after,
                       std::string location, std::string what)
    : Error(errc_for(status), std::move(what)),
      status_(status),
      code_(std::move(code)),
      inner_code_(std::move(inner_code)),
      message_(std::move(message)),
      request_id_(std::move(request_id)),
      retry_after_(retry_after),
      location_(std::move(location)) {}

bool GraphError::has_code(std::string_view c) const noexcept {
  return (!code_.empty() && iequals(code_, c)) || (!inner_code_.empty() && iequals(inner_code_, c));
}

TokenError::TokenError(Errc errc, int status, std::string error, long aadsts, std::string description,
                       std::string what)
    : Error(errc, std::move(what)),
      status_(status),
      error_(std::move(error)),
      aadsts_(aadsts),
      description_(std::move(description)) {}

GraphError make_graph_error(int status, std::string_view body, std::string_view request_id_header,
                            std::optional<std::chrono::milliseconds> retry_after, std::string location,
                            std::string_view context) {
  std::string code, inner, message, request_id(request_id_header);
  auto j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    auto err = j.find("error");
    if (err != j.end() && err->is_object()) {
      code = str_of(*err, "code");
      message = str_of(*err, "message");
      for (const char* k : {"innerError", "innererror"}) {
        auto in = err->find(k);
        if (in == err->end() || !in->is_object()) continue;
        inner = str_of(*in, "code");
        if (request_id.empty()) request_id = str_of(*in, "request-id");
        // OneDrive nests ever more specific codes; the deepest is the most useful.
        for (const nlohmann::json* node = &*in;;) {
          auto deeper = node->find("innererror");
          if (deeper == node->end() || !deeper->is_object()) break;
          node = &*deeper;
          auto c = str_of(*node, "code");
          if (!c.empty()) inner = c;
        }
        break;
      }
    }
  }
  std::string what(context);
  what += ": " + std::to_string(status);
  if (!code.empty()) what += " " + code;
  if (!inner.empty() && inner != code) what += " (" + inner + ")";
  if (!message.empty()) what += ": " + message.substr(0, 300);
  if (body.empty()) what += " (empty body)";
  if (!request_id.empty()) what += " [request-id " + request_id + "]";
  return GraphError(status, std::move(code), std::move(inner), std::move(message), std::move(request_id),
                    retry_after, std::move(location), std::move(what));
}

bool is_invalid_delta(const GraphError& e) noexcept {
  return e.status() == 410 ||
         any_code(e, {"syncStateNotFound", "syncStateInvalid", "resyncRequired", "resyncChangesApplyDifferences",
                      "resyncChangesUploadDifferences", "resyncApplyDifferences", "resyncUploadDifferences"});
}

bool is_throttled(const GraphError& e) noexcept {
  return e.status() == 429 || any_code(e, {"TooManyRequests", "ApplicationThrottled", "activityLimitReached"});
}

bool is_transient(const GraphError& e) noexcept {
  return e.status() == 502 || e.status() == 503 || e.status() == 504 || any_code(e, {"serviceNotAvailable"});
}

bool is_mailbox_not_enabled(const GraphError& e) noexcept {
  return any_code(e, {"MailboxNotEnabledForRESTAPI", "ResourceNotFound", "ErrorInvalidUser"});
}

bool is_not_found(const GraphError& e) noexcept {
  if (is_mailbox_not_enabled(e)) return false;
  return e.status() == 404 ||
         any_code(e, {"ErrorItemNotFound", "itemNotFound", "ErrorSyncFolderNotFound", "Request_ResourceNotFound"});
}

bool is_auth_failure(const GraphError& e) noexcept {
  return e.status() == 401 || any_code(e, {"InvalidAuthenticationToken", "AuthenticationError", "unauthenticated"});
}

bool is_auth_failure(const TokenError&) noexcept { return true; }

bool is_access_denied(const GraphError& e) noexcept {
  return e.status() == 403 || any_code(e, {"Authorization_RequestDenied", "ErrorAccessDenied", "accessDenied"});
}

bool is_corrupt_item(const GraphError& e) noexcept {
  return any_code(e, {"ErrorCorruptData", "ErrorCannotOpenFileAttachment"});
}

bool is_malware(const GraphError& e) noexcept { return any_code(e, {"malwareDetected"}); }

bool is_already_exists(const GraphError& e) noexcept {
  return any_code(e, {"ErrorFolderExists", "nameAlreadyExists"});
}

bool is_quota_exceeded(const GraphError& e) noexcept {
  return any_code(e, {"ErrorQuotaExceeded", "quotaLimitReached"});
}

}  // namespace m365vault::graph
