#include "m365vault/storage/object_store.hpp"

#include "m365vault/core/error.hpp"

namespace m365vault::storage {

namespace {
bool key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-' || c == '/';
}

// Checks the segments of s; the last one may be empty when allow_trailing (prefixes).
bool valid_segments(std::string_view s, bool allow_trailing_empty) {
  std::size_t start = 0;
  for (;;) {
    auto slash = s.find('/', start);
    auto seg = s.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    bool last = slash == std::string_view::npos;
    if (seg.empty() && !(last && allow_trailing_empty)) return false;
    if (!seg.empty() && seg.front() == '.') return false;
    if (last) return true;
    start = slash + 1;
  }
}
}  // namespace

void validate_key(std::string_view key) {
  bool ok = !key.empty() && key.size() <= 1024;
  for (char c : key) ok = ok && key_char(c);
  if (!ok || !valid_segments(key, false))
    throw Error(Errc::bad_request, "object key '" + std::string(key) +
                                       "' is invalid (use 1..1024 of [A-Za-z0-9._-/], no empty segment, "
                                       "no segment starting with '.')");
}

void validate_prefix(std::string_view prefix) {
  if (prefix.empty()) return;
  bool ok = prefix.size() <= 1024;
  for (char c : prefix) ok = ok && key_char(c);
  if (!ok || !valid_segments(prefix, true))
    throw Error(Errc::bad_request, "object key prefix '" + std::string(prefix) + "' is invalid");
}

std::vector<ObjectInfo> list_all(ObjectStore& store, std::string_view prefix) {
  std::vector<ObjectInfo> out;
  std::string token;
  do {
    auto page = store.list(prefix, token, 1000);
    for (auto& o : page.objects) out.push_back(std::move(o));
    token = std::move(page.next_token);
  } while (!token.empty());
  return out;
}

}  // namespace m365vault::storage
