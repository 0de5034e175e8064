#include "support/openapi_check.hpp"

#include <regex>
#include <set>
#include <sstream>

#include "support/daemon.hpp"
#include "support/env.hpp"

namespace m365vault::test {

using json = nlohmann::json;

namespace {

std::vector<std::string> split_path(const std::string& p) {
  std::vector<std::string> out;
  std::stringstream ss(p);
  std::string part;
  while (std::getline(ss, part, '/')) out.push_back(part);
  return out;
}

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

std::string type_of(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

bool type_matches(const std::string& want, const json& v) {
  auto have = type_of(v);
  if (want == have) return true;
  if (want == "number" && have == "integer") return true;
  // 3.0 as a float that is whole is still an integer in JSON Schema.
  if (want == "integer" && have == "number") return v.get<double>() == static_cast<double>(static_cast<long long>(v.get<double>()));
  return false;
}

std::string brief(const json& v) {
  auto s = v.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

}  // namespace

OpenApiCheck OpenApiCheck::from_env() {
  return OpenApiCheck(json::parse(read_text(require_service("M365VAULT_TEST_OPENAPI_JSON"))));
}

const json& OpenApiCheck::resolve(const json& node) const {
  const json* n = &node;
  for (int guard = 0; n->is_object() && n->contains("$ref") && guard < 32; ++guard) {
    auto ref = (*n)["$ref"].get<std::string>();
    if (ref.rfind("#/", 0) != 0) throw std::runtime_error("openapi: non-local $ref '" + ref + "'");
    n = &spec_.at(json::json_pointer(ref.substr(1)));
  }
  return *n;
}

std::optional<std::string> OpenApiCheck::operation_path(const std::string& method, const std::string& target) const {
  auto path = target.substr(0, target.find('?'));
  auto segs = split_path(path);
  std::optional<std::string> best;
  int best_literals = -1;
  for (auto& [tmpl, item] : spec_["paths"].items()) {
    if (!item.contains(lower(method))) continue;
    auto t = split_path(tmpl);
    if (t.size() != segs.size()) continue;
    int literals = 0;
    bool ok = true;
    for (std::size_t i = 0; i < t.size() && ok; ++i) {
      if (!t[i].empty() && t[i].front() == '{') ok = !segs[i].empty();
      else if (t[i] == segs[i]) ++literals;
      else ok = false;
    }
    if (ok && literals > best_literals) {
      best = tmpl;
      best_literals = literals;
    }
  }
  return best;
}

std::vector<std::string> OpenApiCheck::check_response(const std::string& method, const std::string& target, int status,
                                                      const std::string& content_type, const std::string& body) const {
  std::vector<std::string> out;
  auto tmpl = operation_path(method, target);
  if (!tmpl) return {method + " " + target + ": no such operation in openapi.yaml"};
  const auto& op = spec_["paths"][*tmpl][lower(method)];
  const auto& responses = op["responses"];
  const std::string code = std::to_string(status);
  const json* resp = nullptr;
  if (responses.contains(code)) resp = &resolve(responses[code]);
  else if (responses.contains("default")) resp = &resolve(responses["default"]);
  const std::string what = method + " " + *tmpl + " " + code;
  if (!resp) return {what + ": status not documented"};
  auto ct = lower(content_type.substr(0, content_type.find(';')));
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  if (!resp->contains("content")) {
    if (!body.empty()) out.push_back(what + ": documented without a body, got " + std::to_string(body.size()) + " bytes");
    return out;
  }
  const auto& content = (*resp)["content"];
  if (!content.contains(ct)) {
    // A media range ("text/*", "*/*") documents any type it covers; such bodies are not parsed.
    const bool covered = content.contains("*/*") || content.contains(ct.substr(0, ct.find('/')) + "/*");
    if (!covered) out.push_back(what + ": content type '" + ct + "' not documented");
    return out;
  }
  if (ct != "application/json" && ct != "application/problem+json") return out;
  json value;
  try {
    value = json::parse(body);
  } catch (const std::exception& e) {
    return {what + ": body is not JSON: " + e.what()};
  }
  if (!content[ct].contains("schema")) return {what + ": no schema"};
  check_at(content[ct]["schema"], value, what + " body", out);
  return out;
}

std::vector<std::string> OpenApiCheck::check(const json& schema, const json& value) const {
  std::vector<std::string> out;
  check_at(schema, value, "$", out);
  return out;
}

// allOf as one object schema: the union of properties and required (our spec uses
// allOf only to extend an object with more fields).
json OpenApiCheck::flatten_all_of(const json& schema) const {
  json merged = {{"type", "object"}, {"properties", json::object()}, {"required", json::array()}};
  std::set<std::string> required;
  for (auto& part_ref : schema["allOf"]) {
    json part = resolve(part_ref);
    if (part.contains("allOf")) part = flatten_all_of(part);
    const json props = part.value("properties", json::object()), req = part.value("required", json::array());
    for (auto& [k, v] : props.items()) merged["properties"][k] = v;
    for (auto& r : req) required.insert(r.get<std::string>());
    if (part.contains("additionalProperties")) merged["additionalProperties"] = part["additionalProperties"];
  }
  for (auto& r : required) merged["required"].push_back(r);
  for (auto& [k, v] : schema.items())
    if (k != "allOf") merged[k] = v;
  return merged;
}

void OpenApiCheck::check_at(const json& schema_ref, const json& value, const std::string& where,
                            std::vector<std::string>& out) const {
  const json& schema0 = resolve(schema_ref);
  if (schema0.is_boolean()) {
    if (!schema0.get<bool>()) out.push_back(where + ": not allowed");
    return;
  }
  json flat;
  const json* sp = &schema0;
  if (schema0.contains("allOf")) {
    flat = flatten_all_of(schema0);
    sp = &flat;
  }
  const json& s = *sp;
  for (const char* key : {"oneOf", "anyOf"}) {
    if (!s.contains(key)) continue;
    int matched = 0;
    for (auto& alt : s[key]) {
      std::vector<std::string> errs;
      check_at(alt, value, where, errs);
      if (errs.empty()) ++matched;
    }
    if (std::string(key) == "oneOf" ? matched != 1 : matched < 1)
      out.push_back(where + ": matches " + std::to_string(matched) + " of the " + key + " alternatives");
  }
  if (s.contains("type")) {
    std::vector<std::string> types;
    if (s["type"].is_array()) types = s["type"].get<std::vector<std::string>>();
    else types.push_back(s["type"].get<std::string>());
    if (s.value("nullable", false)) types.push_back("null");
    bool ok = false;
    for (auto& t : types) ok = ok || type_matches(t, value);
    if (!ok) {
      out.push_back(where + ": expected " + s["type"].dump() + ", got " + type_of(value) + " " + brief(value));
      return;
    }
  }
  if (s.contains("const") && s["const"] != value) out.push_back(where + ": expected " + s["const"].dump() + ", got " + brief(value));
  if (s.contains("enum")) {
    bool ok = false;
    for (auto& e : s["enum"]) ok = ok || e == value;
    if (!ok) out.push_back(where + ": " + brief(value) + " is not one of " + s["enum"].dump());
  }
  if (value.is_string()) {
    const auto& str = value.get_ref<const std::string&>();
    if (s.contains("minLength") && str.size() < s["minLength"].get<std::size_t>()) out.push_back(where + ": shorter than minLength");
    if (s.contains("maxLength") && str.size() > s["maxLength"].get<std::size_t>()) out.push_back(where + ": longer than maxLength");
    if (s.contains("pattern") && !std::regex_search(str, std::regex(s["pattern"].get<std::string>())))
      out.push_back(where + ": " + brief(value) + " does not match " + s["pattern"].get<std::string>());
    auto fmt = s.value("format", "");
    static const std::regex kUuid("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$");
    static const std::regex kTime(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$)");
    if (fmt == "uuid" && !std::regex_match(str, kUuid)) out.push_back(where + ": " + brief(value) + " is not a uuid");
    if (fmt == "date-time" && !std::regex_match(str, kTime)) out.push_back(where + ": " + brief(value) + " is not an RFC 3339 date-time");
  }
  if (value.is_number()) {
    if (s.contains("minimum") && value.get<double>() < s["minimum"].get<double>()) out.push_back(where + ": below minimum");
    if (s.contains("maximum") && value.get<double>() > s["maximum"].get<double>()) out.push_back(where + ": above maximum");
  }
  if (value.is_object()) {
    const json required = s.value("required", json::array());
    for (auto& r : required)
      if (!value.contains(r.get<std::string>())) out.push_back(where + ": required field '" + r.get<std::string>() + "' is missing");
    const bool has_props = s.contains("properties");
    for (auto& [k, v] : value.items()) {
      if (has_props && s["properties"].contains(k)) {
        check_at(s["properties"][k], v, where + "." + k, out);
      } else if (s.contains("additionalProperties")) {
        const auto& ap = s["additionalProperties"];
        if (ap.is_boolean()) {
          if (!ap.get<bool>()) out.push_back(where + ": field '" + k + "' is not documented");
        } else {
          check_at(ap, v, where + "." + k, out);
        }
      } else if (has_props) {
        out.push_back(where + ": field '" + k + "' is not documented");
      }
    }
  }
  if (value.is_array() && s.contains("items"))
    for (std::size_t i = 0; i < value.size(); ++i) check_at(s["items"], value[i], where + "[" + std::to_string(i) + "]", out);
}

}  // namespace m365vault::test
