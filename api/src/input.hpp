#pragma once
// Strict reading of JSON request bodies: the right Content-Type, valid JSON and
// UTF-8, bounded nesting, an object, known fields only, each of the right type.
// Every refusal names the field.
#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <string>

#include "m365vault/core/error.hpp"
#include "m365vault/net/http.hpp"

namespace m365vault::api {

class JsonInput {
 public:
  explicit JsonInput(const net::Request& req, int max_depth = 16) {
    auto ct = req.headers.get("Content-Type").value_or("");
    if (ct.substr(0, ct.find(';')) != "application/json")
      throw Error(Errc::unsupported_media, "request body must be application/json");
    try {
      int depth_seen = 0;
      j_ = nlohmann::json::parse(req.body, [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
        depth_seen = std::max(depth_seen, depth);
        if (depth > max_depth) throw Error(Errc::bad_request, "request body nests deeper than " + std::to_string(max_depth));
        return true;
      });
    } catch (const nlohmann::json::exception& e) {
      throw Error(Errc::bad_request, std::string("request body is not valid JSON: ") + e.what());
    }
    if (!j_.is_object()) throw Error(Errc::bad_request, "request body must be a JSON object");
  }

  std::optional<std::string> string(const std::string& key, size_t max_len = 1000, size_t min_len = 0) {
    auto v = take(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_string()) fail(key, "must be a string");
    auto s = v->get<std::string>();
    if (s.size() > max_len) fail(key, "longer than " + std::to_string(max_len) + " characters");
    if (s.size() < min_len) fail(key, s.empty() ? "is empty" : "shorter than " + std::to_string(min_len) + " characters");
    return s;
  }
  // A present-but-null value, to clear an optional setting (PATCH).
  bool is_null(const std::string& key) const { return j_.contains(key) && j_[key].is_null(); }
  bool has(const std::string& key) const { return j_.contains(key); }
  std::optional<long long> integer(const std::string& key, long long lo, long long hi) {
    auto v = take(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_number_integer()) fail(key, "must be an integer");
    auto n = v->get<long long>();
    if (v->is_number_unsigned() && v->get<unsigned long long>() > static_cast<unsigned long long>(hi))
      fail(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    if (n < lo || n > hi) fail(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return n;
  }
  std::optional<bool> boolean(const std::string& key) {
    auto v = take(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_boolean()) fail(key, "must be true or false");
    return v->get<bool>();
  }
  std::optional<nlohmann::json> object(const std::string& key) {
    auto v = take(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_object()) fail(key, "must be an object");
    return *v;
  }
  // The whole body, for a reader that checks its fields itself (a restore request).
  const nlohmann::json& whole() const { return j_; }
  // Call last: any field not read is unknown.
  void finish() const {
    for (auto& [k, _] : j_.items())
      if (!read_.count(k)) throw Error(Errc::bad_request, "field '" + k + "': unknown field");
  }
  [[noreturn]] static void fail(const std::string& key, const std::string& what) {
    throw Error(Errc::bad_request, "field '" + key + "': " + what);
  }

 private:
  std::optional<nlohmann::json> take(const std::string& key) {
    read_.insert(key);
    if (!j_.contains(key)) return std::nullopt;
    return j_[key];
  }
  nlohmann::json j_;
  std::set<std::string> read_;
};

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF)
// without NUL: what a path or query parameter must be before anything reads it.
inline bool valid_text(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : 0;  // continuation bytes
    if (n == 0 || c > 0xF4 || i + n >= s.size()) return false;
    unsigned cp = c & (0x3F >> n);
    for (size_t k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

// The `limit` query parameter of a listing: `dflt` when absent, else a whole
// number from 1 to `max` (anything else is refused, naming the parameter).
inline int limit_param(const net::Request& req, int dflt, int max) {
  auto v = req.query_param("limit");
  if (!v) return dflt;
  if (v->empty() || v->size() > 6 || v->find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(*v) < 1 || std::stoi(*v) > max)
    throw Error(Errc::bad_request, "parameter 'limit': expected a whole number from 1 to " + std::to_string(max));
  return std::stoi(*v);
}

// A path or query id that must be a UUID.
inline std::string require_uuid(const std::string& what, const std::string& s) {
  bool ok = s.size() == 36;
  for (size_t i = 0; ok && i < s.size(); ++i) {
    char c = s[i];
    ok = (i == 8 || i == 13 || i == 18 || i == 23) ? c == '-' : std::isxdigit(static_cast<unsigned char>(c)) != 0;
  }
  if (!ok) throw Error(Errc::bad_request, what + " '" + s.substr(0, 64) + "' is not a UUID");
  return s;
}

}  // namespace m365vault::api
