#include "m365vault/restore/selection.hpp"

#include <algorithm>

#include "m365vault/core/error.hpp"

namespace m365vault::restore {

using json = nlohmann::json;
using storage::Category;

namespace {

[[noreturn]] void bad_field(std::string_view field, const std::string& why) {
  throw Error(Errc::bad_request, "field '" + std::string(field) + "': " + why);
}

std::string join(std::string_view a, std::string_view b) { return std::string(a) + "." + std::string(b); }

std::string string_field(const json& v, const std::string& field, size_t max) {
  if (!v.is_string()) bad_field(field, "must be a string");
  auto s = v.get<std::string>();
  if (s.empty() || s.size() > max) bad_field(field, "must be 1 to " + std::to_string(max) + " characters");
  return s;
}

// A JSON array of strings, each checked by `check` (which returns an error or "").
template <class Check>
std::vector<std::string> string_list(const json& v, const std::string& field, Check check) {
  if (!v.is_array()) bad_field(field, "must be an array of strings");
  if (v.size() > 10000) bad_field(field, "at most 10000 entries (select a container or an owner instead)");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    auto f = field + "[" + std::to_string(i) + "]";
    auto s = string_field(v[i], f, 320);
    if (auto why = check(s); !why.empty()) bad_field(f, "'" + s.substr(0, 64) + "' " + why);
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
  }
  return out;
}

std::string catalog_id(const std::string& s) {
  return s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos ? "" : "is not a catalog id";
}

}  // namespace

Selection Selection::from_json(const json& j, std::string_view field) {
  if (!j.is_object()) bad_field(field, "must be an object");
  Selection s;
  bool has_tenant = false;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& k = it.key();
    const auto f = join(field, k);
    const auto& v = it.value();
    if (k == "tenant") {
      s.tenant = string_field(v, f, 200);
      has_tenant = true;
    } else if (k == "at") {
      if (!v.is_null()) s.at = string_field(v, f, 64);
    } else if (k == "owners") {
      s.owners = string_list(v, f, [](const std::string&) { return std::string(); });
    } else if (k == "categories") {
      for (auto& c : string_list(v, f, [](const std::string& c) {
             return storage::parse_category(c) ? std::string()
                                               : std::string("is not a category (mail, contacts, calendar, onedrive, "
                                                             "sharepoint, teams)");
           }))
        s.categories.push_back(*storage::parse_category(c));
    } else if (k == "items") {
      s.items = string_list(v, f, catalog_id);
    } else if (k == "containers") {
      s.containers = string_list(v, f, catalog_id);
    } else if (k == "query") {
      if (!v.is_null()) s.query = string_field(v, f, 1000);
    } else {
      bad_field(f, "unknown field (expected tenant, at, owners, categories, items, containers, query)");
    }
  }
  if (!has_tenant) bad_field(join(field, "tenant"), "required");
  if (s.owners.empty() && s.categories.empty() && s.items.empty() && s.containers.empty())
    bad_field(field, "selects nothing: give owners, categories, items or containers");
  return s;
}

json Selection::to_json() const {
  json j = {{"tenant", tenant}};
  if (at) j["at"] = *at;
  if (!owners.empty()) j["owners"] = owners;
  if (!categories.empty()) {
    json cats = json::array();
    for (auto c : categories) cats.push_back(std::string(storage::to_string(c)));
    j["categories"] = cats;
  }
  if (!items.empty()) j["items"] = items;
  if (!containers.empty()) j["containers"] = containers;
  if (query) j["query"] = *query;
  return j;
}

Selection Selection::from_spec(const storage::SelectionSpec& spec) {
  Selection s;
  s.tenant = spec.tenant_id;
  s.at = spec.at;
  s.owners = spec.owner_ids;
  s.categories = spec.categories;
  s.items = spec.item_ids;
  s.containers = spec.container_ids;
  s.query = spec.query;
  return s;
}

storage::Owner find_owner(storage::PgConnection& c, const storage::Catalog& catalog, const std::string& tenant_id,
                          const std::string& tenant_name, const std::string& ref) {
  // A name two owners share (a group and its team) must be given by id.
  auto r = c.exec(
      "SELECT id, kind FROM owners WHERE tenant_id = $1::uuid AND (id::text = lower($2) OR lower(upn) = lower($2)"
      " OR lower(mail) = lower($2) OR graph_id = $2) ORDER BY id",
      {tenant_id, ref});
  if (r.rows() == 0) throw Error(Errc::not_found, "owner '" + ref + "' does not exist in tenant '" + tenant_name + "'");
  if (r.rows() > 1) {
    std::string which;
    for (int i = 0; i < r.rows(); ++i)
      which += (i ? ", " : "") + std::string(r.get(i, 0)) + " (" + std::string(r.get(i, 1)) + ")";
    throw Error(Errc::bad_request, "owner '" + ref + "' is ambiguous: give one of " + which);
  }
  auto o = catalog.get_owner(c, std::string(r.get(0, 0)));
  if (!o) throw Error(Errc::not_found, "owner '" + ref + "' does not exist in tenant '" + tenant_name + "'");
  return *o;
}

storage::SelectionSpec resolve(storage::PgConnection& c, const storage::Catalog& catalog, const Selection& s,
                               const storage::Scope& scope) {
  auto tenant = catalog.get_tenant(c, s.tenant, scope);
  if (!tenant) throw Error(Errc::not_found, "tenant '" + s.tenant + "' does not exist");
  storage::SelectionSpec spec;
  spec.tenant_id = tenant->id;
  spec.scope = scope;
  spec.at = catalog.resolve_at(c, s.at, scope);
  for (auto& ref : s.owners) {
    auto id = find_owner(c, catalog, tenant->id, s.tenant, ref).id;
    if (std::find(spec.owner_ids.begin(), spec.owner_ids.end(), id) == spec.owner_ids.end())
      spec.owner_ids.push_back(std::move(id));
  }
  spec.categories = s.categories;
  spec.item_ids = s.items;
  spec.container_ids = s.containers;
  spec.query = s.query;
  catalog.check_selection(c, spec);
  return spec;
}

// ---------------------------------------------------------------- the enumerator

SelectionEnumerator::SelectionEnumerator(const storage::Catalog& catalog, storage::SelectionSpec spec, int page_size)
    : catalog_(catalog), spec_(std::move(spec)), page_size_(page_size) {
  if (page_size_ < 1 || page_size_ > 10000) throw Error(Errc::internal, "selection page size out of range");
}

bool SelectionEnumerator::load_scopes(storage::PgConnection& c) {
  auto page = catalog_.selection_scopes(c, spec_, scopes_cursor_, page_size_);
  scopes_ = std::move(page.scopes);
  next_scopes_cursor_ = page.next_cursor;
  scopes_loaded_ = true;
  return !scopes_.empty();
}

bool SelectionEnumerator::at_a_scope(storage::PgConnection& c) {
  for (;;) {
    if (!scopes_loaded_) load_scopes(c);
    if (scope_index_ < scopes_.size()) return true;
    if (!next_scopes_cursor_) return false;
    scopes_cursor_ = next_scopes_cursor_;
    scopes_loaded_ = false;
    scope_index_ = 0;
    items_phase_ = false;
    cursor_.reset();
  }
}

std::optional<SelectionPage> SelectionEnumerator::next(storage::PgConnection& c) {
  for (;;) {
    if (only_index_ && scope_index_ != *only_index_) return std::nullopt;
    if (!at_a_scope(c)) return std::nullopt;
    SelectionPage out;
    out.scope = scopes_[scope_index_];
    if (!items_phase_) {
      auto page = catalog_.selected_containers(c, spec_, out.scope, cursor_, page_size_);
      cursor_ = page.next_cursor;
      if (!cursor_) items_phase_ = true;
      out.containers = std::move(page.containers);
      if (!out.containers.empty()) return out;
      continue;
    }
    auto page = catalog_.selected_items(c, spec_, out.scope, cursor_, page_size_);
    cursor_ = page.next_cursor;
    if (!cursor_) {
      ++scope_index_;
      items_phase_ = false;
    }
    out.items = std::move(page.items);
    if (!out.items.empty()) return out;
  }
}

std::optional<std::pair<storage::SelectionScope, json>> SelectionEnumerator::next_scope(storage::PgConnection& c) {
  if (!at_a_scope(c)) return std::nullopt;
  items_phase_ = false;  // a scope starts with its containers
  cursor_.reset();
  auto at = position();
  return std::make_pair(scopes_[scope_index_++], std::move(at));
}

void SelectionEnumerator::only_scope(const json& position) {
  resume(position);
  only_index_ = scope_index_;
}

json SelectionEnumerator::position() const {
  auto o = [](const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); };
  return {{"scopes", o(scopes_cursor_)},
          {"scope", scope_index_},
          {"phase", items_phase_ ? "items" : "containers"},
          {"cursor", o(cursor_)}};
}

void SelectionEnumerator::resume(const json& p) {
  auto bad = [] { return Error(Errc::bad_request, "selection position: not one this enumerator produced"); };
  if (!p.is_object() || !p.contains("scopes") || !p.contains("scope") || !p.contains("phase") || !p.contains("cursor"))
    throw bad();
  const auto &sc = p["scopes"], &ix = p["scope"], &ph = p["phase"], &cu = p["cursor"];
  if (!(sc.is_null() || sc.is_string()) || !ix.is_number_unsigned() || !(ph == "items" || ph == "containers") ||
      !(cu.is_null() || cu.is_string()) || ix.get<size_t>() > static_cast<size_t>(page_size_))
    throw bad();
  scopes_cursor_ = sc.is_null() ? std::nullopt : std::optional<std::string>(sc.get<std::string>());
  scope_index_ = ix.get<size_t>();
  items_phase_ = ph == "items";
  cursor_ = cu.is_null() ? std::nullopt : std::optional<std::string>(cu.get<std::string>());
  scopes_loaded_ = false;
  next_scopes_cursor_.reset();
  scopes_.clear();
}

}  // namespace m365vault::restore
