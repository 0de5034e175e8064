// `m365vaultd repo init | verify | prune | rebuild-index`: the repository's
// administrator commands, over the same code the daemon and the tests run
// (storage/maintenance.hpp). Exit status: 0 fine, 1 a problem found or a failure,
// 2 bad usage or configuration.
#include <fcntl.h>
#include <unistd.h>

#include <iostream>

#include "m365vault/core/error.hpp"
#include "m365vault/daemon/app.hpp"
#include "m365vault/storage/maintenance.hpp"
#include "m365vault/storage/s3_store.hpp"
#include "cli_common.hpp"

namespace m365vault::daemon {

namespace {

const char* kRepoUsage =
    "usage: m365vaultd repo init [--key-file-out FILE]\n"
    "       m365vaultd repo verify [--deep] [--repair]\n"
    "       m365vaultd repo prune [--grace DURATION] [--dry-run]   (DURATION: 24h, 90m, 7d, 3600s; default 24h)\n"
    "       m365vaultd repo rebuild-index\n";

std::optional<std::chrono::seconds> parse_duration(const std::string& s) {
  if (s.empty()) return std::nullopt;
  std::size_t digits = s.find_first_not_of("0123456789");
  if (digits == 0) return std::nullopt;
  long long n = std::stoll(s.substr(0, digits == std::string::npos ? s.size() : digits));
  std::string unit = digits == std::string::npos ? "s" : s.substr(digits);
  long long mult = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  if (mult == 0) return std::nullopt;
  return std::chrono::seconds(n * mult);
}

std::string short_id(const storage::Id& id) { return id.hex(); }

int repo_init(const Config& cfg, const Args& a) {
  Logging logging(cfg.log.format, spdlog::level::warn);
  storage::InitOptions init;
  try {
    init.keys = repository_keys(cfg);
  } catch (const Error&) {
    if (!a.opt("key-file-out")) throw;  // a key file alone is enough
  }
  std::string key_file;
  int fd = -1;
  if (auto out = a.opt("key-file-out")) {
    // Never overwrite: an existing file may be another repository's only key.
    fd = ::open(out->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      std::cerr << "m365vaultd: cannot create key file '" << *out << "': " << std::strerror(errno) << "\n";
      return 1;
    }
    key_file = storage::generate_key_file();
    init.keys.key_file = key_file;
  }
  auto store = open_store(cfg, logging, true);
  // A new S3 repository may need its bucket (succeeds when we already own it).
  if (auto* s3 = dynamic_cast<storage::S3Store*>(store.get())) s3->create_bucket();
  storage::RepositoryConfig rc;
  try {
    rc = storage::Repository::init(*store, init);
  } catch (...) {
    if (fd >= 0) {
      ::close(fd);
      ::unlink(a.opt("key-file-out")->c_str());
    }
    throw;
  }
  if (fd >= 0) {
    bool ok = ::write(fd, key_file.data(), key_file.size()) == static_cast<ssize_t>(key_file.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
      std::cerr << "m365vaultd: writing key file '" << *a.opt("key-file-out")
                << "' failed: the repository exists, open it with the passphrase\n";
      return 1;
    }
  }
  std::cout << "created repository " << rc.id << " at '" << store->describe() << "'"
            << (init.keys.passphrase ? ", opened by the passphrase" : "")
            << (init.keys.key_file ? std::string(init.keys.passphrase ? " and" : ",") + " by the key file '" +
                                         *a.opt("key-file-out") + "'"
                                   : std::string())
            << "\n";
  std::cerr << "WARNING: " << storage::kLostKeyWarning << "\n";
  return 0;
}

int repo_verify(const Config& cfg, const Args& a) {
  Session s(cfg);
  auto h = open_repository(cfg, s.dbh.conninfo, s.logging);
  storage::VerifyOptions o;
  o.deep = a.flags.count("deep") != 0;
  o.repair = a.flags.count("repair") != 0;
  auto r = storage::verify_repository(*h.repo, *h.store, *h.index, o);
  std::cout << "index: " << r.indexed_packs << " packs, " << r.indexed_blobs << " blobs; store '"
            << h.store->describe() << "': " << r.stored_packs << " packs\n";
  for (auto& p : r.missing)
    std::cout << "MISSING pack " << short_id(p) << ": indexed but absent from the store ("
              << h.index->blobs_in(p).size() << " blobs lost)\n";
  for (auto& p : r.size_mismatch) std::cout << "DAMAGED pack " << short_id(p) << ": its size differs from the index's\n";
  for (auto& p : r.unindexed)
    std::cout << "unindexed pack " << short_id(p)
              << (o.repair ? "" : ": not in the index (a crash before the index commit?); --repair adopts it") << "\n";
  for (auto& d : r.damaged) {
    std::cout << "DAMAGED pack " << short_id(d.pack) << ": " << d.error << "\n";
    for (auto& b : d.damaged) std::cout << "  damaged blob " << short_id(b) << "\n";
  }
  if (!r.damaged_referenced.empty()) {
    std::cout << r.damaged_referenced.size() << " damaged blob(s) are referenced by retained versions:\n";
    for (auto& b : r.damaged_referenced) std::cout << "  referenced blob " << short_id(b) << "\n";
    // The items whose content they are: what an operator must restore from elsewhere.
    std::vector<std::string> hex;
    for (auto& b : r.damaged_referenced) hex.push_back(b.hex());
    auto items = s.conn.exec(
        "SELECT t.name, o.coalesce_name, v.category, coalesce(v.path, v.name), v.id,"
        "  to_char(v.from_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), v.to_at IS NULL"
        " FROM item_versions v"
        " JOIN (SELECT id, tenant_id, coalesce(upn, mail, display_name, graph_id) AS coalesce_name FROM owners) o"
        "   ON o.id = v.owner_id"
        " JOIN tenants t ON t.id = o.tenant_id"
        " WHERE v.content_blobs && (SELECT array_agg(decode(h, 'hex')) FROM jsonb_array_elements_text($1::jsonb) h)"
        " ORDER BY 1, 2, 3, 4, v.from_at",
        {nlohmann::json(hex).dump()});
    std::cout << items.rows() << " item version(s) have damaged content:\n";
    for (int i = 0; i < items.rows(); ++i)
      std::cout << "  tenant '" << items.get(i, 0) << "' owner '" << items.get(i, 1) << "' " << items.get(i, 2) << " '"
                << items.get(i, 3) << "' (version " << items.get(i, 4) << " from " << items.get(i, 5)
                << (items.get(i, 6) == "t" ? ", current" : "") << ")\n";
  }
  if (o.repair) {
    for (auto& p : r.adopted) std::cout << "repaired: adopted pack " << short_id(p) << "\n";
    for (auto& p : r.forgotten) std::cout << "repaired: removed the index rows of missing pack " << short_id(p) << "\n";
    if (!r.adopted.empty() || !r.forgotten.empty())
      audit_cli(s.conn, "repo verify --repair", std::nullopt, "repository:" + h.repo->config().id, 200,
                {{"adopted", r.adopted.size()}, {"forgotten", r.forgotten.size()}});
  }
  std::cout << (r.ok() ? "repository ok" : "repository DAMAGED") << (o.deep ? " (deep check)" : " (quick check)")
            << "\n";
  return r.ok() ? 0 : 1;
}

int repo_prune(const Config& cfg, const Args& a) {
  auto grace = parse_duration(a.opt("grace").value_or("24h"));
  if (!grace) {
    std::cerr << "m365vaultd: option '--grace': expected a duration like 24h, 90m, 7d or 3600s, got '"
              << *a.opt("grace") << "'\n";
    return 2;
  }
  bool dry = a.flags.count("dry-run") != 0;
  Session s(cfg);
  auto h = open_repository(cfg, s.dbh.conninfo, s.logging);
  storage::PruneOptions po;
  po.grace = *grace;
  po.dry_run = dry;
  auto r = storage::prune_repository(*h.repo, *h.store, *h.index, po);
  const char* would = dry ? "would be " : "";
  std::cout << r.index.referenced_blobs << " blob(s) referenced\n";
  for (auto& p : r.index.revived) std::cout << "pack " << short_id(p) << ": referenced again, " << would << "kept\n";
  for (auto& p : r.index.expired)
    std::cout << "pack " << short_id(p.id) << ": unreferenced past the grace period, " << would << "deleted\n";
  std::cout << r.index.newly_doomed.size() << " unreferenced pack(s) " << would << "marked for deletion after "
            << grace->count() << " s; " << r.index.expired.size() << " pack(s) (" << r.index.expired_bytes << " bytes) "
            << would << "deleted\n";
  for (auto& sp : r.repacked)
    std::cout << "pack " << short_id(sp.id) << ": " << sp.referenced_bytes << " of " << sp.blob_bytes
              << " blob bytes referenced, " << sp.referenced.size() << " blob(s) " << (dry ? "would be " : "")
              << "repacked; the pack goes after the grace period\n";
  for (auto& f : r.remove_failed) std::cout << "FAILED to delete " << f << " (no longer indexed; 'repo verify' lists it)\n";
  if (!dry)
    audit_cli(s.conn, "repo prune", std::nullopt, "repository:" + h.repo->config().id, r.remove_failed.empty() ? 200 : 500,
              {{"doomed", r.index.newly_doomed.size()}, {"deleted", r.index.expired.size()},
               {"revived", r.index.revived.size()}});
  return r.remove_failed.empty() ? 0 : 1;
}

int repo_rebuild(const Config& cfg) {
  Session s(cfg);
  auto h = open_repository(cfg, s.dbh.conninfo, s.logging);
  auto r = storage::rebuild_index(*h.repo, *h.store, *h.index);
  for (auto& [p, why] : r.unreadable) std::cout << "UNREADABLE pack " << short_id(p) << ": " << why << "\n";
  std::cout << "index rebuilt from '" << h.store->describe() << "': " << r.packs << " packs, " << r.blobs << " blobs\n";
  audit_cli(s.conn, "repo rebuild-index", std::nullopt, "repository:" + h.repo->config().id, r.unreadable.empty() ? 200 : 500,
            {{"packs", r.packs}, {"blobs", r.blobs}, {"unreadable", r.unreadable.size()}});
  return r.unreadable.empty() ? 0 : 1;
}

}  // namespace

int run_repo(const Config& cfg, const std::vector<std::string>& raw) {
  Args a;
  try {
    a = Args::parse(raw, {"key-file-out", "grace"}, {"deep", "repair", "dry-run"});
  } catch (const Error& e) {
    std::cerr << "m365vaultd repo: " << e.what() << "\n" << kRepoUsage;
    return 2;
  }
  auto only = [&](std::set<std::string> opts, std::set<std::string> flags) {
    for (auto& [k, v] : a.opts)
      if (!opts.count(k)) return false;
    for (auto& f : a.flags)
      if (!flags.count(f)) return false;
    return a.positional.empty();
  };
  if (a.verb == "init" && only({"key-file-out"}, {})) return repo_init(cfg, a);
  if (a.verb == "verify" && only({}, {"deep", "repair"})) return repo_verify(cfg, a);
  if (a.verb == "prune" && only({"grace"}, {"dry-run"})) return repo_prune(cfg, a);
  if (a.verb == "rebuild-index" && only({}, {})) return repo_rebuild(cfg);
  std::cerr << kRepoUsage;
  return 2;
}

}  // namespace m365vault::daemon
