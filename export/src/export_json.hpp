#pragma once
// Reading fields of stored Graph JSON: absent or null is empty, a value of the
// wrong type is an Error(Errc::bad_request) that names the field.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "m365vault/core/error.hpp"

namespace m365vault::exporting {

inline std::string json_string(const nlohmann::json& j, const char* key, const char* within = nullptr) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_string())
    throw Error(Errc::bad_request, std::string("field '") + (within ? std::string(within) + "." : "") + key +
                                       "': expected a string, got " + it->type_name());
  return it->get<std::string>();
}

inline std::vector<std::string> json_strings(const nlohmann::json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array())
    throw Error(Errc::bad_request, std::string("field '") + key + "': expected an array, got " + it->type_name());
  for (auto& v : *it)
    if (v.is_string() && !v.get_ref<const std::string&>().empty()) out.push_back(v.get<std::string>());
  return out;
}

}  // namespace m365vault::exporting
