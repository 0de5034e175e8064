#pragma once
// Holds responses to openapi.yaml (bundled to JSON by scripts/test.sh into
// M365VAULT_TEST_OPENAPI_JSON): finds the operation a request hit, the response
// documented for its status and content type, and checks the body against that
// schema.
//
// The JSON-schema subset our spec uses: $ref (local), type (one or a list, "null"
// included), nullable, const, enum, required, properties, additionalProperties,
// items, allOf, oneOf, anyOf, pattern, minLength/maxLength, minimum/maximum and the
// formats uuid and date-time. One rule is stricter than JSON Schema on purpose: an
// object schema that lists `properties` is closed unless it says
// `additionalProperties`, so a field the server sends but the document does not
// name fails (the document is the contract; an undocumented field is drift).
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace m365vault::test {

class OpenApiCheck {
 public:
  explicit OpenApiCheck(nlohmann::json spec) : spec_(std::move(spec)) {}
  // Loads M365VAULT_TEST_OPENAPI_JSON (a missing variable fails the test).
  static OpenApiCheck from_env();

  // The path template (e.g. "/api/v1/items/{id}") that `target` (path and query) hits.
  std::optional<std::string> operation_path(const std::string& method, const std::string& target) const;

  // Problems with a response: an undocumented operation or status, a body in a
  // content type the response does not list, a body that does not parse or does
  // not match the schema. Empty: it matches. Bodies of non-JSON content types are
  // not parsed (only their content type is checked, against the listed types and
  // media ranges such as "*/*").
  std::vector<std::string> check_response(const std::string& method, const std::string& target, int status,
                                          const std::string& content_type, const std::string& body) const;

  // Problems with `value` against `schema` (used by check_response, and by tests of the checker).
  std::vector<std::string> check(const nlohmann::json& schema, const nlohmann::json& value) const;

 private:
  const nlohmann::json& resolve(const nlohmann::json& node) const;
  void check_at(const nlohmann::json& schema, const nlohmann::json& value, const std::string& where,
                std::vector<std::string>& out) const;
  nlohmann::json flatten_all_of(const nlohmann::json& schema) const;
  nlohmann::json spec_;
};

}  // namespace m365vault::test
