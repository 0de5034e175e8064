// `m365vaultd export`: the same export the API makes, written to a file. The
// export is created like POST /api/v1/exports does (its selection pinned, a job of
// kind "export"), its run is executed here when no daemon has taken it, and the
// zip is streamed to FILE.partial, renamed to FILE only when complete: a zip by
// the given name is always whole.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli_common.hpp"
#include "content_reader.hpp"
#include "m365vault/daemon/app.hpp"
#include "m365vault/export/exports.hpp"
#include "m365vault/scheduler/worker.hpp"

namespace m365vault::daemon {

namespace {

class FileSink : public net::BodySink {
 public:
  explicit FileSink(std::filesystem::path p) : path_(std::move(p)), out_(path_, std::ios::binary | std::ios::trunc) {
    if (!out_) throw Error(Errc::storage, "cannot write '" + path_.string() + "': " + std::strerror(errno));
  }
  boost::asio::awaitable<void> write(std::string_view bytes) override {
    out_.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out_) throw Error(Errc::storage, "cannot write '" + path_.string() + "': " + std::strerror(errno) + " (disk full?)");
    co_return;
  }
  void close() {
    out_.close();
    if (!out_) throw Error(Errc::storage, "cannot write '" + path_.string() + "': " + std::strerror(errno));
  }

 private:
  std::filesystem::path path_;
  std::ofstream out_;
};

}  // namespace

int run_export_command(const Config& cfg, const std::vector<std::string>& raw) {
  const char* usage =
      "usage: m365vaultd export --tenant NAME|ID [--owner UPN|ID[,...]] [--container ID[,...]] [--item ID[,...]]\n"
      "                         [--category mail,contacts,calendar,onedrive,sharepoint] [--at RFC3339|SNAPSHOT]\n"
      "                         [--mbox] --output FILE.zip\n"
      "exit status: 0 every item exported, 3 some items could not be (see the zip's manifest.json), 1 failed\n";
  Args a;
  try {
    std::vector<std::string> with_verb{"export"};
    with_verb.insert(with_verb.end(), raw.begin(), raw.end());
    a = Args::parse(with_verb, {"tenant", "owner", "container", "item", "category", "at", "output"}, {"mbox"});
  } catch (const Error& e) {
    std::cerr << "m365vaultd export: " << e.what() << "\n" << usage;
    return 2;
  }
  if (!a.opt("tenant") || !a.opt("output") || !a.positional.empty()) {
    std::cerr << usage;
    return 2;
  }
  nlohmann::json sel = selection_from_args(a);
  nlohmann::json body = {{"selection", sel}, {"format", {{"mbox", a.flags.count("mbox") > 0}}}};
  const std::filesystem::path output = *a.opt("output");
  const std::filesystem::path partial = output.string() + ".partial";

  Session s(cfg);
  storage::Catalog cat;
  scheduler::Queue q(std::chrono::seconds(cfg.scheduler.lease_s));
  exporting::ExportInfo e;
  try {
    e = exporting::create_export(s.conn, q, cat, body, std::string("cli"), {});
  } catch (const Error& err) {
    std::cerr << "m365vaultd: " << err.what() << "\n";
    return err.code() == Errc::bad_request || err.code() == Errc::not_found ? 2 : 1;
  }
  audit_cli(s.conn, "export", e.tenant_id, "export:" + e.id, 202, body);
  std::cout << "export " << e.id << ": listing the selection at " << e.selection.value("at", "now") << std::endl;

  boost::asio::io_context ioc;
  storage::Database db(s.dbh.conninfo, 2, timeouts_of(cfg), s.logging.get("db"));
  // The run, here unless a daemon took it first (then we wait for it).
  const std::string worker_id = boost::uuids::to_string(boost::uuids::random_generator()());
  if (auto claimed = q.claim(s.conn, worker_id, {"export"}, e.run_id)) {
    scheduler::RunContext ctx(*claimed, s.logging.get("export"));
    exporting::ExportKind kind(db);
    auto fut = boost::asio::co_spawn(ioc, kind.execute(ctx), boost::asio::use_future);
    ioc.run();
    ioc.restart();
    scheduler::RunOutcome outcome{scheduler::RunState::failed, std::nullopt};
    try {
      outcome = fut.get();
    } catch (const std::exception& err) {
      outcome.error = err.what();
    }
    q.finish(s.conn, claimed->id, worker_id, outcome.state, outcome.error);
  } else if (follow_run(s.conn, q, *e.run_id) != 0) {
    return 1;
  }
  auto ready = exporting::get_export(s.conn, e.id, {});
  if (!ready || ready->state != "ready") {
    std::cerr << "m365vaultd: export " << e.id << " is " << (ready ? ready->state : "gone")
              << (ready && ready->error ? ": " + *ready->error : std::string()) << "\n";
    return 1;
  }
  std::cout << "export " << e.id << ": " << ready->items.value_or(0) << " item versions, "
            << scheduler::human_bytes(static_cast<double>(ready->bytes.value_or(0))) << "; writing " << output.string()
            << std::endl;

  auto repo = open_repository(cfg, s.dbh.conninfo, s.logging);
  RepositoryContentReader reader(*repo.repo);
  FileSink sink(partial);
  const auto t0 = std::chrono::steady_clock::now();
  auto fut = boost::asio::co_spawn(ioc, exporting::stream_export(db, e.id, {}, reader, sink), boost::asio::use_future);
  ioc.run();
  exporting::ExportSummary sum;
  try {
    sum = fut.get();
    sink.close();
  } catch (const std::exception& err) {
    std::error_code ec;
    std::filesystem::remove(partial, ec);
    std::cerr << "m365vaultd: export " << e.id << ": " << err.what() << "\n";
    return 1;
  }
  std::filesystem::rename(partial, output);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << output.string() << ": " << sum.items << " items in " << sum.files << " files, "
            << scheduler::human_bytes(static_cast<double>(sum.content_bytes)) << " exported ("
            << scheduler::human_bytes(static_cast<double>(sum.zip_bytes)) << " zipped) in " << secs << " s, "
            << (secs > 0 ? static_cast<double>(sum.content_bytes) / 1e6 / secs : 0.0) << " MB/s, faults " << sum.faults
            << ", skipped " << sum.skipped << "\n";
  return sum.faults ? 3 : 0;
}

}  // namespace m365vault::daemon
