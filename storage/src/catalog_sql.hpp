#pragma once
// Private to the catalog's sources (catalog.cpp, catalog_select.cpp): the SQL
// fragments, row readers and cursor helpers they share, so a second source file
// reads rows exactly as the first does.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/catalog.hpp"
#include "m365vault/storage/pg.hpp"

// A timestamptz column as RFC 3339 UTC with microseconds.
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

namespace m365vault::storage::catalog_sql {

using json = nlohmann::json;

std::optional<std::string> opt(const PgResult& r, int row, int col);
std::optional<long long> opt_int(const PgResult& r, int row, int col);

// Opaque client cursors: base64url of a small JSON array. read_cursor returns null
// for no cursor and throws bad_request for anything this API did not return.
std::string make_cursor(const json& j);
json read_cursor(const std::optional<std::string>& c);
[[noreturn]] void bad_cursor();

bool looks_like_uuid(std::string_view s);
bool looks_like_id(std::string_view s);  // a catalog bigint id
void require_uuid(std::string_view what, const std::string& s);
PgParam scope_param(const Scope& s);
void check_limit(int limit);

// Item versions joined with their item (i) : v, read by version_from_row.
extern const char* kVersionColumns;
extern const int kVersionColumnCount;
ItemVersion version_from_row(const PgResult& r, int i);

// Containers: c (containers) and cv (one of their versions) in this order, read
// by container_from_row (a query may add columns after them).
extern const char* kContainerColumns;
ContainerEntry container_from_row(const PgResult& r, int i);

// The visibility predicate of versions aliased `a` at the instant in parameter `p`.
std::string visible(const std::string& a, const std::string& p);
// Scope check for an owner id column, with the scope tenant in parameter `s`.
std::string owner_in_scope(const std::string& col, const std::string& s);

// PostgreSQL's refusals of malformed values (class 22: a bad timestamp...) are
// the caller's input errors, not an unavailable database.
template <class F>
auto input_errors(F f) -> decltype(f()) {
  try {
    return f();
  } catch (const PgError& e) {
    if (e.sqlstate().rfind("22", 0) == 0) throw Error(Errc::bad_request, std::string("invalid value: ") + e.what());
    throw;
  }
}

}  // namespace m365vault::storage::catalog_sql
