#pragma once
// Exports as the API and the CLI see them: a request (a selection and format
// options) becomes a one-off job of kind "export" whose run freezes the list of
// item versions the selection holds at its instant; a download then streams that
// list as a zip (zip_export.hpp) as often as asked. All database calls are
// blocking and take the connection to use; stream_export is the async download.
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "m365vault/export/zip_export.hpp"
#include "m365vault/scheduler/queue.hpp"
#include "m365vault/scheduler/worker.hpp"
#include "m365vault/storage/catalog.hpp"
#include "m365vault/storage/pg.hpp"

namespace m365vault::exporting {

struct ExportInfo {
  std::string id, job_id, tenant_id;
  nlohmann::json selection;  // pinned
  ExportOptions format;
  std::optional<std::string> requested_by;
  std::string created_at;
  std::string state;  // queued, running, ready, failed, cancelled
  std::optional<std::string> run_id, error, frozen_at;
  std::optional<long long> items, bytes;
  int downloads = 0;
  nlohmann::json to_json() const;
};

struct ExportPage {
  std::vector<ExportInfo> exports;
  std::optional<std::string> next_cursor;
};

// Parses {"selection": {...}, "format": {"mbox": bool}}, resolves the selection
// (names, the instant; every listed item, container and owner must exist in
// `scope`), and creates the export, its job and a queued run in one transaction.
// Throws Error(Errc::bad_request) naming the field, Errc::not_found for a
// referent out of scope.
ExportInfo create_export(storage::PgConnection& c, const scheduler::Queue& q, const storage::Catalog& cat,
                         const nlohmann::json& body, const std::optional<std::string>& requested_by,
                         const storage::Scope& scope);
std::optional<ExportInfo> get_export(storage::PgConnection& c, const std::string& id, const storage::Scope& scope);
// Newest first; `cursor` from a previous page. Throws Errc::bad_request for a cursor not from here.
ExportPage list_exports(storage::PgConnection& c, const std::optional<std::string>& cursor, int limit,
                        const storage::Scope& scope);

// Streams a ready export's zip to `sink`. Throws Error(Errc::conflict) when the
// export is not ready, Errc::not_found when it is out of scope.
boost::asio::awaitable<ExportSummary> stream_export(storage::Database& db, std::string export_id, storage::Scope scope,
                                                   ContentSource& source, net::BodySink& sink);

// The "export" job kind: freezes the list. Idempotent: a retried or taken-over
// run starts the list again from the same pinned selection.
class ExportKind final : public scheduler::JobKind {
 public:
  explicit ExportKind(storage::Database& db) : db_(db) {}
  boost::asio::awaitable<scheduler::RunOutcome> execute(scheduler::RunContext& ctx) override;

 private:
  storage::Database& db_;
};

}  // namespace m365vault::exporting
