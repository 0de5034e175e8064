#pragma once
// Graph items (as delta pages carry them) to catalog versions: the metadata that
// browsing and search need, per kind. Tolerant of what Graph really sends:
// missing properties, nulls, booleans as strings ("isRead": "true").
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "m365vault/storage/catalog.hpp"

namespace m365vault::backup {

// "Name <address>" or whichever part is there, from {"emailAddress":{...}}.
std::string format_address(const nlohmann::json& recipient);

// The item's change key: changeKey, else the @odata.etag's quoted part, else "".
std::string change_key_of(const nlohmann::json& item);

// Metadata of a message from its delta entry (content_* are filled by the caller).
storage::ItemChange message_change(const nlohmann::json& m, const std::string& folder_id);
storage::ItemChange contact_change(const nlohmann::json& c, const std::string& folder_id);
storage::ItemChange event_change(const nlohmann::json& e, const std::string& calendar_id);

// The $select the pipeline asks message deltas for.
extern const char* const kMessageSelect;

}  // namespace m365vault::backup
