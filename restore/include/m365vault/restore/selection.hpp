#pragma once
// What a restore or an export covers: items, containers (with everything under
// them), whole owners and categories of one tenant, as they were at `at`,
// optionally filtered by a search query.
//
//   {"tenant": "contoso",                      id or name (required)
//    "at": "2026-11-29T08:00:00Z",             RFC 3339 instant or snapshot id; absent: now
//    "owners": ["adele@contoso.com"],          owner ids, UPNs, mail addresses or Graph ids
//    "categories": ["mail", "onedrive"],
//    "items": ["1234"], "containers": ["56"],  catalog ids (from browse or search)
//    "query": "invoice -draft"}                Catalog::search syntax
//
// Meaning: the tenant's items narrowed to `owners` and `categories` (empty: all);
// when `items` or `containers` are given, only those items and everything under
// those containers, recursively; then only what matches `query`. At least one of
// owners, categories, items or containers must be given: a whole tenant is
// selected by naming its categories, never by an empty object.
//
// Threading: Selection is a value. resolve() and SelectionEnumerator::next() are
// blocking and take the connection to use (call them on the database threads).
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "m365vault/storage/catalog.hpp"
#include "m365vault/storage/pg.hpp"

namespace m365vault::restore {

struct Selection {
  std::string tenant;
  std::optional<std::string> at;
  std::vector<std::string> owners;
  std::vector<storage::Category> categories;
  std::vector<std::string> items, containers;
  std::optional<std::string> query;

  // Parses the object above. Throws Error(Errc::bad_request) naming the field as
  // `<field>.<name>` (e.g. "field 'selection.items[2]': ..."): unknown fields, wrong
  // types, malformed ids, unknown categories, an empty selection.
  static Selection from_json(const nlohmann::json& j, std::string_view field = "selection");
  // The same object; from_json(to_json()) == *this.
  nlohmann::json to_json() const;
  // The pinned form of a resolved spec (tenant and owners as ids, `at` the
  // instant), so a resumed job reads exactly what the first attempt read.
  static Selection from_spec(const storage::SelectionSpec& spec);
  bool operator==(const Selection&) const = default;
};

// Resolves names and the instant, and checks every listed referent exists in
// `scope` at the instant (Catalog::check_selection). Throws Errc::not_found for a
// tenant, owner, item or container out of scope, Errc::bad_request for an
// ambiguous owner name or a referent outside the selection's narrowing or time.
storage::SelectionSpec resolve(storage::PgConnection& c, const storage::Catalog& catalog, const Selection& s,
                               const storage::Scope& scope);

// The owner of tenant `tenant_id` named by `ref`: its id, UPN, mail address or
// Graph id. Throws not_found (naming `tenant_name`) or bad_request when two
// owners answer to it (a group and its team): give the id then.
storage::Owner find_owner(storage::PgConnection& c, const storage::Catalog& catalog, const std::string& tenant_id,
                          const std::string& tenant_name, const std::string& ref);

// One page of a selection, all of one (owner, category): either containers
// (parents before children, each with its path at the instant) or items (each
// with its container's path then). A scope's containers all come before its items.
struct SelectionPage {
  storage::SelectionScope scope;
  std::vector<storage::SelectedContainer> containers;
  std::vector<storage::SelectedItem> items;
};

// Walks a selection in pages of at most `page_size` rows, scope by scope. Memory
// is bounded by the page size whatever the selection's size. position() after a
// page, given to resume() on a fresh enumerator, continues with the next page
// (a restore checkpoints it so a taken-over run does not start over).
class SelectionEnumerator {
 public:
  SelectionEnumerator(const storage::Catalog& catalog, storage::SelectionSpec spec, int page_size = 500);
  // The next page; nullopt when the selection is exhausted.
  std::optional<SelectionPage> next(storage::PgConnection& c);
  nlohmann::json position() const;
  // Throws Errc::bad_request for a position this class did not produce.
  void resume(const nlohmann::json& position);
  const storage::SelectionSpec& spec() const { return spec_; }
  // The walk scope by scope (a restore writes several at once): the next scope and
  // the position where its pages start, skipping its pages. The position given to
  // only_scope() on a fresh enumerator walks that scope's pages alone; given to
  // resume() it walks from that scope to the end.
  std::optional<std::pair<storage::SelectionScope, nlohmann::json>> next_scope(storage::PgConnection& c);
  // resume(position), then next() ends after the scope the position starts.
  void only_scope(const nlohmann::json& position);

 private:
  bool load_scopes(storage::PgConnection& c);
  // Loads the next page of scopes when this one is used up; false at the end.
  bool at_a_scope(storage::PgConnection& c);

  const storage::Catalog& catalog_;
  storage::SelectionSpec spec_;
  int page_size_;
  // Where we stand: the scope page (by the cursor that produced it), the scope
  // within it, the phase ("containers" or "items") and the cursor in that phase.
  std::optional<std::string> scopes_cursor_, next_scopes_cursor_;
  std::vector<storage::SelectionScope> scopes_;
  bool scopes_loaded_ = false;
  size_t scope_index_ = 0;
  bool items_phase_ = false;
  std::optional<std::string> cursor_;
  std::optional<size_t> only_index_;  // only_scope(): the scope index to stop after
};

}  // namespace m365vault::restore
