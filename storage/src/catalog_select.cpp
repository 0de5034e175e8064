// Selections for restore and export: which (owner, category) scopes, containers
// and item versions a request covers at one instant, read in keyset pages.
//
// A scope's tree at the instant is computed by one recursive query over the
// container versions visible then (the stored `path` column is a cache of the
// current tree, so it cannot answer "where was it at T"). The same query marks
// the subtrees of the selected containers (`under`) and carries each container's
// ancestors (`ids`), so the containers to recreate and the items' paths come
// from one pass per page.
#include <algorithm>

#include "catalog_sql.hpp"

namespace m365vault::storage {

using namespace catalog_sql;

namespace {

const std::vector<Category> kAllCategories = {Category::mail,     Category::contacts,   Category::calendar,
                                              Category::onedrive, Category::sharepoint, Category::teams};

// A PostgreSQL array literal of ids already checked to be digits or UUIDs.
std::string array_literal(const std::vector<std::string>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + v[i];
  return out + "}";
}

std::vector<std::string> category_names(const std::vector<Category>& cats) {
  std::vector<std::string> out;
  for (auto c : cats.empty() ? kAllCategories : cats) out.emplace_back(to_string(c));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool selects_all(const SelectionSpec& s) { return s.item_ids.empty() && s.container_ids.empty(); }

void check_ids(const SelectionSpec& s) {
  require_uuid("selection tenant", s.tenant_id);
  for (auto& o : s.owner_ids) require_uuid("selection owner", o);
  for (auto& i : s.item_ids)
    if (!looks_like_id(i)) throw Error(Errc::bad_request, "selection item '" + i.substr(0, 64) + "' is not an item id");
  for (auto& k : s.container_ids)
    if (!looks_like_id(k))
      throw Error(Errc::bad_request, "selection container '" + k.substr(0, 64) + "' is not a container id");
  if (s.query && (s.query->empty() || s.query->size() > 1000))
    throw Error(Errc::bad_request, "selection query: 1 to 1000 characters");
}

// The tree of one scope at the instant. Parameters: $1 owner, $2 category, $3 the
// instant, $4 selected container ids (bigint[]).
const std::string kTreeCte =
    "WITH RECURSIVE cv_at AS ("
    "  SELECT cv.container_id AS id, cv.parent_id, cv.display_name, cv.well_known, cv.from_at, cv.to_at"
    "  FROM container_versions cv JOIN containers c ON c.id = cv.container_id"
    "  WHERE c.owner_id = $1::uuid AND c.category = $2 AND " + visible("cv", "$3") + "),"
    " tree(id, path, depth, ids, under) AS ("
    "  SELECT a.id, a.display_name, 0, ARRAY[a.id], a.id = ANY($4::bigint[]) FROM cv_at a"
    "  WHERE a.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM cv_at p WHERE p.id = a.parent_id)"
    "  UNION ALL"
    "  SELECT a.id, t.path || '/' || a.display_name, t.depth + 1, t.ids || a.id, t.under OR a.id = ANY($4::bigint[])"
    "  FROM cv_at a JOIN tree t ON a.parent_id = t.id WHERE t.depth < 64)";

// The selected-item predicate over v (item_versions), i (items) and t (the tree,
// left-joined on v.container_id). Parameters: $1..$4 as the tree, $5 listed item
// ids (bigint[]), $6 the query (nullable), $7 everything of the scope (boolean).
const std::string kItemSelected =
    " v.owner_id = $1::uuid AND v.category = $2 AND " + visible("v", "$3") +
    " AND ($7::boolean OR i.id = ANY($5::bigint[]) OR coalesce(t.under, false))"
    " AND ($6::text IS NULL OR v.search @@ websearch_to_tsquery('simple', $6))";

std::vector<PgParam> scope_params(const SelectionSpec& s, const SelectionScope& scope) {
  PgParam q;
  if (s.query) q = *s.query;
  return {scope.owner_id,
          std::string(to_string(scope.category)),
          s.at,
          array_literal(s.container_ids),
          array_literal(s.item_ids),
          q,
          std::string(selects_all(s) ? "true" : "false")};
}

void check_scope(PgConnection& c, const SelectionSpec& s, const SelectionScope& scope, int limit) {
  check_ids(s);
  require_uuid("selection owner", scope.owner_id);
  check_limit(limit);
  if (c.exec("SELECT 1 FROM owners WHERE id = $1::uuid AND tenant_id = $2::uuid AND " +
                 owner_in_scope("id", "$3"),
             {scope.owner_id, s.tenant_id, scope_param(s.scope)})
          .rows() == 0)
    throw Error(Errc::not_found, "owner '" + scope.owner_id + "' does not exist in this tenant");
}

}  // namespace

void Catalog::check_selection(PgConnection& c, const SelectionSpec& s) const {
  check_ids(s);
  if (s.at.empty()) throw Error(Errc::bad_request, "selection 'at': not resolved");
  if (!get_tenant(c, s.tenant_id, s.scope)) throw Error(Errc::not_found, "tenant '" + s.tenant_id + "' does not exist");
  const auto cats = category_names(s.categories);
  {
    auto r = c.exec(
        "SELECT x FROM unnest($1::uuid[]) AS x WHERE NOT EXISTS"
        " (SELECT 1 FROM owners o WHERE o.id = x AND o.tenant_id = $2::uuid) LIMIT 1",
        {array_literal(s.owner_ids), s.tenant_id});
    if (r.rows() > 0)
      throw Error(Errc::not_found, "owner '" + std::string(r.get(0, 0)) + "' does not exist in this tenant");
  }
  // Each listed item or container: in the tenant, inside the narrowing, and
  // existing at the instant. The first failing one is named.
  struct Listed {
    const char* what;
    const char* table;
    const char* versions;
    const char* version_key;
    const std::vector<std::string>* ids;
  };
  for (const Listed& l : {Listed{"item", "items", "item_versions", "item_id", &s.item_ids},
                          Listed{"container", "containers", "container_versions", "container_id", &s.container_ids}}) {
    if (l.ids->empty()) continue;
    auto r = input_errors([&] {
      return c.exec(std::string("SELECT x::text, o.id IS NOT NULL,"
                                " (cardinality($3::uuid[]) = 0 OR k.owner_id = ANY($3::uuid[])) AND k.category = ANY($4::text[]),"
                                " EXISTS (SELECT 1 FROM ") +
                        l.versions + " v WHERE v." + l.version_key +
                        " = x AND v.from_at <= $5::timestamptz AND (v.to_at IS NULL OR v.to_at > $5::timestamptz))"
                        " FROM unnest($1::bigint[]) AS x LEFT JOIN " +
                        l.table +
                        " k ON k.id = x LEFT JOIN owners o ON o.id = k.owner_id AND o.tenant_id = $2::uuid"
                        " ORDER BY x",
                    {array_literal(*l.ids), s.tenant_id, array_literal(s.owner_ids), array_literal(cats), s.at});
    });
    for (int i = 0; i < r.rows(); ++i) {
      const std::string id(r.get(i, 0));
      if (r.get(i, 1) != "t") throw Error(Errc::not_found, std::string(l.what) + " '" + id + "' does not exist in this tenant");
      if (r.get(i, 2) != "t")
        throw Error(Errc::bad_request, std::string(l.what) + " '" + id +
                                           "' is outside the selected owners or categories (drop it or widen them)");
      if (r.get(i, 3) != "t")
        throw Error(Errc::bad_request, std::string(l.what) + " '" + id + "' did not exist at " + s.at +
                                           " (choose an instant when it did)");
    }
  }
}

SelectionScopePage Catalog::selection_scopes(PgConnection& c, const SelectionSpec& s,
                                             const std::optional<std::string>& cursor, int limit) const {
  check_ids(s);
  check_limit(limit);
  PgParam cur_owner, cur_cat;
  if (auto j = read_cursor(cursor); !j.is_null()) {
    if (j.size() != 2 || !j[0].is_string() || !j[1].is_string() || !looks_like_uuid(j[0].get<std::string>()) ||
        !parse_category(j[1].get<std::string>()))
      bad_cursor();
    cur_owner = j[0].get<std::string>();
    cur_cat = j[1].get<std::string>();
  }
  // Every (owner, category) of the narrowed tenant that held something by the
  // instant; with listed items or containers, only the scopes they belong to.
  auto r = c.exec(
      "SELECT o.id, cat FROM owners o CROSS JOIN unnest($3::text[]) AS cat"
      " WHERE o.tenant_id = $1::uuid AND ($2::uuid IS NULL OR o.tenant_id = $2::uuid)"
      " AND (cardinality($4::uuid[]) = 0 OR o.id = ANY($4::uuid[]))"
      " AND ($8::uuid IS NULL OR (o.id, cat) > ($8::uuid, $9::text))"
      " AND (CASE WHEN $7::boolean THEN"
      "   EXISTS (SELECT 1 FROM items i WHERE i.owner_id = o.id AND i.category = cat AND i.first_seen_at <= $10::timestamptz)"
      "   OR EXISTS (SELECT 1 FROM containers k JOIN container_versions cv ON cv.container_id = k.id"
      "     WHERE k.owner_id = o.id AND k.category = cat AND cv.from_at <= $10::timestamptz)"
      " ELSE"
      "   EXISTS (SELECT 1 FROM items i WHERE i.id = ANY($5::bigint[]) AND i.owner_id = o.id AND i.category = cat)"
      "   OR EXISTS (SELECT 1 FROM containers k WHERE k.id = ANY($6::bigint[]) AND k.owner_id = o.id AND k.category = cat)"
      " END)"
      " ORDER BY o.id, cat LIMIT $11",
      {s.tenant_id, scope_param(s.scope), array_literal(category_names(s.categories)), array_literal(s.owner_ids),
       array_literal(s.item_ids), array_literal(s.container_ids), std::string(selects_all(s) ? "true" : "false"),
       cur_owner, cur_cat, s.at, std::to_string(limit + 1)});
  SelectionScopePage page;
  int n = std::min(r.rows(), limit);
  for (int i = 0; i < n; ++i)
    page.scopes.push_back({std::string(r.get(i, 0)), parse_category(r.get(i, 1)).value_or(Category::mail)});
  if (r.rows() > limit)
    page.next_cursor =
        make_cursor(json::array({page.scopes.back().owner_id, std::string(to_string(page.scopes.back().category))}));
  return page;
}

SelectedContainerPage Catalog::selected_containers(PgConnection& c, const SelectionSpec& s, const SelectionScope& scope,
                                                   const std::optional<std::string>& cursor, int limit) const {
  check_scope(c, s, scope, limit);
  PgParam cur_depth, cur_id;
  if (auto j = read_cursor(cursor); !j.is_null()) {
    if (j.size() != 2 || !j[0].is_number_integer() || !j[1].is_string() || !looks_like_id(j[1].get<std::string>()))
      bad_cursor();
    cur_depth = std::to_string(j[0].get<long long>());
    cur_id = j[1].get<std::string>();
  }
  auto params = scope_params(s, scope);
  params.insert(params.end(), {cur_depth, cur_id, std::to_string(limit + 1)});
  // Kept: with no query, the selected subtrees (or the whole tree) and their
  // ancestors; always, the ancestors-or-self of the selected items' containers.
  auto r = input_errors([&] {
    return c.exec(kTreeCte +
                      ", keep AS (SELECT DISTINCT unnest(t.ids) AS id FROM tree t"
                      "  WHERE ($6::text IS NULL AND ($7::boolean OR t.under))"
                      "  OR t.id IN (SELECT v.container_id FROM item_versions v JOIN items i ON i.id = v.item_id"
                      "    LEFT JOIN tree t ON t.id = v.container_id WHERE" +
                      kItemSelected +
                      "))"
                      " SELECT t.id, k.graph_id, a.display_name, t.path, CASE WHEN t.depth = 0 THEN NULL ELSE a.parent_id END,"
                      " a.well_known, " TS("a.from_at") ", " TS("a.to_at") ", t.depth"
                      " FROM tree t JOIN keep ON keep.id = t.id JOIN cv_at a ON a.id = t.id"
                      " JOIN containers k ON k.id = t.id"
                      " WHERE ($8::int IS NULL OR (t.depth, t.id) > ($8::int, $9::bigint))"
                      " ORDER BY t.depth, t.id LIMIT $10",
                  params);
  });
  SelectedContainerPage page;
  int n = std::min(r.rows(), limit);
  for (int i = 0; i < n; ++i) {
    SelectedContainer sc;
    sc.container = container_from_row(r, i);
    sc.depth = static_cast<int>(r.get_int(i, 8));
    page.containers.push_back(std::move(sc));
  }
  if (r.rows() > limit)
    page.next_cursor = make_cursor(json::array({page.containers.back().depth, page.containers.back().container.id}));
  return page;
}

SelectedItemPage Catalog::selected_items(PgConnection& c, const SelectionSpec& s, const SelectionScope& scope,
                                         const std::optional<std::string>& cursor, int limit) const {
  check_scope(c, s, scope, limit);
  PgParam cur_id;
  if (auto j = read_cursor(cursor); !j.is_null()) {
    if (j.size() != 1 || !j[0].is_string() || !looks_like_id(j[0].get<std::string>())) bad_cursor();
    cur_id = j[0].get<std::string>();
  }
  auto params = scope_params(s, scope);
  params.insert(params.end(), {cur_id, std::to_string(limit + 1)});
  auto r = input_errors([&] {
    return c.exec(kTreeCte + " SELECT " + kVersionColumns +
                      ", t.path FROM item_versions v JOIN items i ON i.id = v.item_id"
                      " LEFT JOIN tree t ON t.id = v.container_id WHERE" +
                      kItemSelected +
                      " AND ($8::bigint IS NULL OR v.id > $8::bigint)"
                      " ORDER BY v.id LIMIT $9",
                  params);
  });
  SelectedItemPage page;
  int n = std::min(r.rows(), limit);
  for (int i = 0; i < n; ++i) page.items.push_back({version_from_row(r, i), opt(r, i, kVersionColumnCount)});
  if (r.rows() > limit) page.next_cursor = make_cursor(json::array({page.items.back().version.version_id}));
  return page;
}

}  // namespace m365vault::storage
