// Administrator commands for the catalog: `tenant add|list` and `snapshot list`.
// They run the same code as the API (Catalog), audited like it. Credentials are
// read from files (never from the command line, where `ps` would show them) and
// sealed with the repository key before they reach the index.
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "cli_common.hpp"
#include "m365vault/daemon/app.hpp"
#include "m365vault/storage/catalog.hpp"
#include "m365vault/storage/sealer.hpp"

namespace m365vault::daemon {

namespace {

std::string read_secret_file(const std::string& option, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(Errc::invalid_config, "option '--" + option + "': cannot read '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  auto s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (s.empty()) throw Error(Errc::invalid_config, "option '--" + option + "': '" + path + "' is empty");
  return s;
}

}  // namespace

int run_tenant(const Config& cfg, const std::vector<std::string>& raw) {
  const char* usage =
      "usage: m365vaultd tenant add --name N --tenant-id T --client-id C\n"
      "                             (--client-secret-file F | --certificate F --private-key F)\n"
      "                             [--graph-url U --login-url U --ca-file F]\n"
      "       m365vaultd tenant list\n";
  Args a;
  try {
    a = Args::parse(raw, {"name", "tenant-id", "client-id", "client-secret-file", "certificate", "private-key",
                          "graph-url", "login-url", "ca-file"},
                    {});
  } catch (const Error& e) {
    std::cerr << "m365vaultd tenant: " << e.what() << "\n" << usage;
    return 2;
  }
  storage::Catalog cat;
  if (a.verb == "add") {
    if (!a.opt("name") || !a.opt("tenant-id") || !a.opt("client-id")) {
      std::cerr << usage;
      return 2;
    }
    const bool by_secret = a.opt("client-secret-file").has_value();
    const bool by_cert = a.opt("certificate") || a.opt("private-key");
    if (by_secret == by_cert || (by_cert && (!a.opt("certificate") || !a.opt("private-key")))) {
      std::cerr << "m365vaultd: give either --client-secret-file, or --certificate and --private-key\n" << usage;
      return 2;
    }
    storage::TenantSpec spec;
    spec.name = *a.opt("name");
    spec.directory_id = *a.opt("tenant-id");
    spec.client_id = *a.opt("client-id");
    spec.graph_url = a.opt("graph-url");
    spec.login_url = a.opt("login-url");
    spec.ca_file = a.opt("ca-file");
    std::string plaintext;
    try {
      if (by_secret) {
        plaintext = read_secret_file("client-secret-file", *a.opt("client-secret-file"));
      } else {
        spec.auth = storage::AuthKind::certificate;
        spec.certificate_pem = read_secret_file("certificate", *a.opt("certificate"));
        plaintext = read_secret_file("private-key", *a.opt("private-key"));
        if (spec.certificate_pem->find("-----BEGIN CERTIFICATE-----") == std::string::npos)
          throw Error(Errc::invalid_config, "option '--certificate': '" + *a.opt("certificate") + "' is not a PEM certificate");
        if (plaintext.find("PRIVATE KEY-----") == std::string::npos)
          throw Error(Errc::invalid_config, "option '--private-key': '" + *a.opt("private-key") + "' is not a PEM private key");
      }
    } catch (const Error& e) {
      std::cerr << "m365vaultd: " << e.what() << "\n";
      return 2;
    }
    Session s(cfg);
    // The credential is sealed with the repository's key: no repository, no tenant.
    auto repo = open_repository(cfg, s.dbh.conninfo, s.logging);
    storage::RepositorySealer sealer(*repo.repo);
    auto id = storage::Catalog::new_tenant_id();
    auto context = storage::Catalog::secret_context(id);
    storage::SealedSecret sealed{context, sealer.seal(context, plaintext)};
    plaintext.assign(plaintext.size(), '\0');
    try {
      auto t = cat.create_tenant(s.conn, id, spec, sealed);
      audit_cli(s.conn, "tenant add", t.id, "tenant:" + t.id, 201,
                {{"name", t.spec.name}, {"auth", storage::to_string(t.spec.auth)}});
      std::cout << "tenant '" << t.spec.name << "' added (id " << t.id << ", " << storage::to_string(t.spec.auth)
                << " credential sealed)\n";
      return 0;
    } catch (const Error& e) {
      std::cerr << "m365vaultd: " << e.what() << "\n";
      return e.code() == Errc::bad_request ? 2 : 1;
    }
  }
  if (a.verb == "list") {
    Session s(cfg);
    std::cout << std::left << std::setw(38) << "ID" << std::setw(24) << "NAME" << std::setw(40) << "TENANT ID"
              << std::setw(13) << "AUTH" << "GRAPH\n";
    for (auto& t : cat.list_tenants(s.conn))
      std::cout << std::setw(38) << t.id << std::setw(24) << t.spec.name << std::setw(40) << t.spec.directory_id
                << std::setw(13) << storage::to_string(t.spec.auth)
                << t.spec.graph_url.value_or("https://graph.microsoft.com") << (t.spec.disabled ? "  (disabled)" : "")
                << "\n";
    return 0;
  }
  std::cerr << usage;
  return 2;
}

int run_snapshot(const Config& cfg, const std::vector<std::string>& raw) {
  const char* usage = "usage: m365vaultd snapshot list --tenant NAME|ID [--limit N]\n";
  Args a;
  try {
    a = Args::parse(raw, {"tenant", "limit"}, {});
  } catch (const Error& e) {
    std::cerr << "m365vaultd snapshot: " << e.what() << "\n" << usage;
    return 2;
  }
  if (a.verb != "list" || !a.opt("tenant")) {
    std::cerr << usage;
    return 2;
  }
  int limit = 100;
  if (auto n = a.opt("limit")) {
    if (n->empty() || n->size() > 4 || n->find_first_not_of("0123456789") != std::string::npos || std::stoi(*n) < 1) {
      std::cerr << "m365vaultd: --limit takes a whole number from 1 to 9999\n";
      return 2;
    }
    limit = std::stoi(*n);
  }
  storage::Catalog cat;
  Session s(cfg);
  auto t = cat.get_tenant(s.conn, *a.opt("tenant"));
  if (!t) {
    std::cerr << "m365vaultd: no tenant '" << *a.opt("tenant") << "'\n";
    return 1;
  }
  storage::SnapshotFilter f;
  f.tenant_id = t->id;
  f.limit = limit;
  auto page = cat.list_snapshots(s.conn, f);
  std::map<std::string, std::string> owner_names;
  std::cout << std::left << std::setw(38) << "ID" << std::setw(32) << "OWNER" << std::setw(11) << "CATEGORY"
            << std::setw(10) << "STATE" << std::setw(29) << "COMPLETED" << "ADDED CHANGED DELETED FAULTS\n";
  for (auto& sn : page.snapshots) {
    auto& name = owner_names[sn.owner_id];
    if (name.empty()) {
      auto o = cat.get_owner(s.conn, sn.owner_id);
      name = o ? o->spec.upn.value_or(o->spec.display_name.value_or(o->spec.graph_id)) : sn.owner_id;
    }
    std::cout << std::setw(38) << sn.id << std::setw(32) << name.substr(0, 31) << std::setw(11)
              << storage::to_string(sn.category) << std::setw(10) << storage::to_string(sn.state) << std::setw(29)
              << sn.completed_at.value_or("-") << sn.items_added << " " << sn.items_changed << " " << sn.items_deleted
              << " " << sn.faults << "\n";
  }
  if (page.next_cursor) std::cout << "(more: raise --limit)\n";
  return 0;
}

}  // namespace m365vault::daemon
