#pragma once
// Graph and identity-platform failures as typed exceptions, and the named
// predicates callers use instead of comparing code strings (CONTRACT.md §1-3).
// Codes are matched case-insensitively on the main and the inner code; bodies
// that are empty or not JSON still give a usable GraphError (status only).
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "m365vault/core/error.hpp"

namespace m365vault::graph {

// A non-success answer from Graph after the client gave up retrying (or did not
// retry: 4xx other than 429). what() is "<method> '<path>': <status> <code>: <message>"
// without the query string (links carry opaque tokens).
class GraphError : public Error {
 public:
  GraphError(int status, std::string code, std::string inner_code, std::string message, std::string request_id,
             std::optional<std::chrono::milliseconds> retry_after, std::string location, std::string what);

  int status() const noexcept { return status_; }
  const std::string& code() const noexcept { return code_; }              // "" when absent
  const std::string& inner_code() const noexcept { return inner_code_; }  // innerError.code, "" when absent
  const std::string& graph_message() const noexcept { return message_; }  // free text, never parse it
  const std::string& request_id() const noexcept { return request_id_; }
  const std::optional<std::chrono::milliseconds>& retry_after() const noexcept { return retry_after_; }
  const std::string& location() const noexcept { return location_; }  // Location header (410 resync), "" if none
  // True when the main or inner code equals `c` ignoring case.
  bool has_code(std::string_view c) const noexcept;

 private:
  int status_;
  std::string code_, inner_code_, message_, request_id_;
  std::optional<std::chrono::milliseconds> retry_after_;
  std::string location_;
};

// The token endpoint refused (AADSTS...) or could not be reached. Errc::unauthorized
// for refusals, Errc::unavailable when the endpoint kept failing transiently.
class TokenError : public Error {
 public:
  TokenError(Errc errc, int status, std::string error, long aadsts, std::string description, std::string what);
  int status() const noexcept { return status_; }
  const std::string& error() const noexcept { return error_; }              // "invalid_client", ...
  long aadsts() const noexcept { return aadsts_; }                           // 7000215, ...; 0 if unknown
  const std::string& description() const noexcept { return description_; }  // first line of error_description

 private:
  int status_;
  std::string error_;
  long aadsts_;
  std::string description_;
};

// Parses a Graph error envelope ({"error":{"code","message","innerError":{...}}},
// also "innererror") into a GraphError. Never throws.
GraphError make_graph_error(int status, std::string_view body, std::string_view request_id_header,
                            std::optional<std::chrono::milliseconds> retry_after, std::string location,
                            std::string_view context);

// Expired, evicted or garbled delta state: discard the cursor and re-enumerate
// (410 whatever the code; syncStateNotFound, syncStateInvalid, resyncRequired and
// OneDrive's resync* detail codes). location() may hold the fresh delta URL.
bool is_invalid_delta(const GraphError& e) noexcept;
// 429, TooManyRequests, ApplicationThrottled, activityLimitReached.
bool is_throttled(const GraphError& e) noexcept;
// 502/503/504 or serviceNotAvailable: try again later.
bool is_transient(const GraphError& e) noexcept;
// The item or container is gone: ErrorItemNotFound, itemNotFound,
// ErrorSyncFolderNotFound, Request_ResourceNotFound, or any other 404 that is not
// a mailbox-not-enabled answer.
bool is_not_found(const GraphError& e) noexcept;
// The owner has no usable mailbox (unlicensed, on-premises, REST disabled):
// MailboxNotEnabledForRESTAPI, ResourceNotFound, ErrorInvalidUser. Skip the owner.
bool is_mailbox_not_enabled(const GraphError& e) noexcept;
// 401 or InvalidAuthenticationToken / AuthenticationError.
bool is_auth_failure(const GraphError& e) noexcept;
// TokenError always is one (AADSTS refusal or an unreachable token endpoint).
bool is_auth_failure(const TokenError& e) noexcept;
// 403, Authorization_RequestDenied, ErrorAccessDenied, accessDenied.
bool is_access_denied(const GraphError& e) noexcept;
// This one item cannot be read: ErrorCorruptData, ErrorCannotOpenFileAttachment.
bool is_corrupt_item(const GraphError& e) noexcept;
// malwareDetected.
bool is_malware(const GraphError& e) noexcept;
// ErrorFolderExists, nameAlreadyExists (restore side).
bool is_already_exists(const GraphError& e) noexcept;
// ErrorQuotaExceeded, quotaLimitReached.
bool is_quota_exceeded(const GraphError& e) noexcept;

}  // namespace m365vault::graph
