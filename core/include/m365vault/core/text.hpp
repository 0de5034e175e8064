#pragma once
// Small text helpers shared by every module.

#include <string>
#include <string_view>

namespace m365vault {

// ASCII lower case (ids, hex digests, URL schemes and hosts, MIME tokens): bytes
// outside A-Z are kept as they are, whatever the locale. To compare two strings
// without case, boost::beast::iequals needs no copies.
inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace m365vault
