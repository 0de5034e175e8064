#pragma once
// AWS Signature Version 4 (header form), written against AWS's published test suite
// (shared/s3/aws4_testsuite): every .creq, .sts and .authz is reproduced byte for
// byte by tests/unit/storage/sigv4_test.cpp. Pure functions, thread-safe.
#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace m365vault::storage::sigv4 {

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // STS; when set the caller sends and signs x-amz-security-token
};

struct Request {
  std::string method;  // "GET"
  std::string path;    // decoded (not percent-encoded): "/bucket/packs/ab/cd"
  std::vector<std::pair<std::string, std::string>> query;    // decoded names and values, any order
  std::vector<std::pair<std::string, std::string>> headers;  // every header to sign, as sent (any case, repeats)
  std::string payload_hash;  // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

struct Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  // "host;x-amz-date"
  std::string signature;       // hex
  std::string authorization;   // the Authorization header's value
};

// Signs `req` at `amz_date` ("20150830T123600Z"). `normalize_path` removes "." and
// ".." segments and repeated slashes (every service but S3, whose keys are taken
// literally).
Signature sign(const Request& req, const Credentials& creds, std::string_view region, std::string_view service,
               std::string_view amz_date, bool normalize_path);

// RFC 3986 encoding as SigV4 wants it: unreserved characters kept, everything else
// %XX (upper case); '/' kept when keep_slash.
std::string uri_encode(std::string_view s, bool keep_slash);

// "YYYYMMDDTHHMMSSZ" in UTC.
std::string amz_date(std::chrono::system_clock::time_point t);

// Hex SHA-256, the payload hash of a signed body.
std::string payload_sha256(std::string_view body);

}  // namespace m365vault::storage::sigv4
