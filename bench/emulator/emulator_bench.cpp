// Measures graph-emulator alone on loopback: delta items served per second, MIME
// megabytes per second and file content megabytes per second (through the 302), with N client threads each on its own keep-alive TLS
// connection. The client does as little as it can (no JSON parsing of items) so the
// figure is the server's. Usage: emulator-bench BASE_URL CA_FILE [clients] [seconds]
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

namespace {

struct Client {
  asio::io_context ioc;
  asio::ssl::context ctx{asio::ssl::context::tls_client};
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> s;
  std::string host, port;
  std::string location;  // of the last response

  Client(const std::string& h, const std::string& p, const std::string& ca) : host(h), port(p) {
    ctx.load_verify_file(ca);
    ctx.set_verify_mode(asio::ssl::verify_peer);
    connect();
  }
  void connect() {
    tcp::resolver r(ioc);
    s = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, ctx);
    beast::get_lowest_layer(*s).connect(r.resolve(host, port));
    s->handshake(asio::ssl::stream_base::client);
  }
  // GET or POST; returns status and fills body.
  int call(const std::string& method, const std::string& target, const std::string& token, const std::string& body,
           std::string& out, const std::string& prefer = "", const std::string& ctype = "application/json") {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, host);
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    if (!prefer.empty()) req.set("Prefer", prefer);
    if (!body.empty()) {
      req.set(http::field::content_type, ctype);
      req.body() = body;
      req.prepare_payload();
    }
    http::write(*s, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    p.body_limit(1ull << 31);
    http::read(*s, buf, p);
    out = std::move(p.get().body());
    location = std::string(p.get()[http::field::location]);
    return static_cast<int>(p.get().result_int());
  }
};

// CPU seconds (user + system) the emulator process has used, or -1 without a pid.
// Dividing work by it gives a per-core figure that other load on the machine does
// not distort.
double cpu_seconds(int pid) {
  if (pid <= 0) return -1;
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!f) return -1;
  char buf[4096];
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  const char* p = std::strrchr(buf, ')');
  if (!p) return -1;
  unsigned long utime = 0, stime = 0;
  // Fields after the command: state(3) ... utime(14) stime(15).
  int field = 2;
  for (const char* q = p + 1; *q && field < 15; ++q) {
    if (*q == ' ') {
      ++field;
      if (field == 14) utime = std::strtoul(q + 1, nullptr, 10);
      if (field == 15) stime = std::strtoul(q + 1, nullptr, 10);
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string after(const std::string& url, const std::string& base) {
  return url.rfind(base, 0) == 0 ? url.substr(base.size()) : url;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: emulator-bench BASE_URL CA_FILE [clients] [seconds]\n";
    return 2;
  }
  const std::string base = argv[1], ca = argv[2];
  const int clients = argc > 3 ? std::atoi(argv[3]) : 4;
  const double seconds = argc > 4 ? std::atof(argv[4]) : 5;
  const int pid = argc > 5 ? std::atoi(argv[5]) : 0;
  auto hp = base.substr(base.find("://") + 3);
  auto host = hp.substr(0, hp.rfind(':')), port = hp.substr(hp.rfind(':') + 1);

  Client admin(host, port, ca);
  std::string out;
  json spec = {{"tenant_id", "bench"}, {"client_id", "bench-app"}, {"client_secret", "s"}, {"seed", 2026},
               {"users", clients}, {"mail_folders_per_user", 4}, {"messages_per_user", 5000},
               // Files for the content figure: 40 per user, 400 MB each user in all.
               {"drive_files_per_user", 40}, {"drive_bytes_per_user", 400000000}};
  if (admin.call("POST", "/_emulator/tenants", "", spec.dump(), out) != 201) {
    std::cerr << "tenant: " << out << "\n";
    return 1;
  }
  admin.call("POST", "/bench/oauth2/v2.0/token", "",
             "grant_type=client_credentials&client_id=bench-app&client_secret=s&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
             out, "", "application/x-www-form-urlencoded");
  const std::string token = json::parse(out)["access_token"];
  admin.call("GET", "/v1.0/users", token, "", out);
  std::vector<std::string> users;
  auto listed = json::parse(out);
  for (auto& u : listed["value"]) users.push_back(u["id"]);
  if (static_cast<int>(users.size()) < clients) {
    std::cerr << "users: " << out.substr(0, 300) << "\n";
    return 1;
  }
  admin.call("PUT", "/_emulator/faults", "", json{{"mailbox_requests_per_window", 100000000}}.dump(), out);

  // 1. Delta items per second: each client walks its own user's folders with full items.
  std::atomic<long> items{0}, bytes{0};
  auto t0 = std::chrono::steady_clock::now();
  double cpu0 = cpu_seconds(pid);
  std::vector<std::thread> ts;
  for (int c = 0; c < clients; ++c) {
    ts.emplace_back([&, c] {
      Client cl(host, port, ca);
      std::string body;
      const std::string u = users[static_cast<std::size_t>(c)];
      for (const char* folder : {"inbox", "sentitems", "archive"}) {
        std::string next = "/v1.0/users/" + u + "/mailFolders/" + folder + "/messages/delta";
        while (!next.empty()) {
          if (cl.call("GET", next, token, "", body, "odata.maxpagesize=500") != 200) {
            std::cerr << "delta: " << body.substr(0, 300) << "\n";
            return;
          }
          long n = 0;
          for (std::size_t p = body.find("\"@odata.etag\""); p != std::string::npos; p = body.find("\"@odata.etag\"", p + 1)) ++n;
          items += n;
          bytes += static_cast<long>(body.size());
          auto nl = body.find("\"@odata.nextLink\":\"");
          if (nl == std::string::npos) break;
          nl += 19;
          next = after(body.substr(nl, body.find('"', nl) - nl), base);
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = cpu_seconds(pid) - cpu0;
  std::printf("delta: %ld items in %.2f s = %.0f items/s (%.1f MB of JSON) with %d clients\n", items.load(), dt,
              items / dt, bytes / 1e6, clients);
  if (pid > 0) std::printf("       emulator CPU %.2f s = %.0f items per CPU-second\n", cpu, items / cpu);

  // 2. MIME megabytes per second: each client reads $value of its user's messages.
  admin.call("GET", "/_emulator/tenants/bench/manifest?category=mail", "", "", out);
  auto manifest = json::parse(out)["items"];
  std::vector<std::vector<std::string>> paths(static_cast<std::size_t>(clients));
  for (auto& it : manifest) {
    for (int c = 0; c < clients; ++c)
      if (it["owner"] == users[static_cast<std::size_t>(c)])
        paths[static_cast<std::size_t>(c)].push_back("/v1.0/users/" + it["owner"].get<std::string>() + "/messages/" +
                                                     it["id"].get<std::string>() + "/$value");
  }
  std::atomic<long> mime_bytes{0}, messages{0};
  ts.clear();
  t0 = std::chrono::steady_clock::now();
  cpu0 = cpu_seconds(pid);
  for (int c = 0; c < clients; ++c) {
    ts.emplace_back([&, c] {
      Client cl(host, port, ca);
      std::string body;
      for (auto& p : paths[static_cast<std::size_t>(c)]) {
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > seconds) break;
        if (cl.call("GET", p, token, "", body) != 200) {
          std::cerr << "mime: " << body.substr(0, 300) << "\n";
          return;
        }
        mime_bytes += static_cast<long>(body.size());
        ++messages;
      }
    });
  }
  for (auto& t : ts) t.join();
  dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  cpu = cpu_seconds(pid) - cpu0;
  std::printf("mime:  %ld messages, %.1f MB in %.2f s = %.0f MB/s, %.0f messages/s with %d clients\n", messages.load(),
              mime_bytes / 1e6, dt, mime_bytes / 1e6 / dt, messages / dt, clients);
  if (pid > 0) std::printf("       emulator CPU %.2f s = %.0f MB per CPU-second\n", cpu, mime_bytes / 1e6 / cpu);

  // 3. File content: /content (302) then the pre-authenticated URL without the token.
  admin.call("GET", "/_emulator/tenants/bench/manifest?category=files", "", "", out);
  auto files = json::parse(out)["items"];
  std::vector<std::vector<std::string>> file_paths(static_cast<std::size_t>(clients));
  for (auto& it : files)
    for (int c = 0; c < clients; ++c)
      if (it["owner"] == users[static_cast<std::size_t>(c)])
        file_paths[static_cast<std::size_t>(c)].push_back("/v1.0/drives/" + it["drive_id"].get<std::string>() +
                                                          "/items/" + it["id"].get<std::string>() + "/content");
  std::atomic<long> file_bytes{0}, downloads{0};
  ts.clear();
  t0 = std::chrono::steady_clock::now();
  cpu0 = cpu_seconds(pid);
  for (int c = 0; c < clients; ++c) {
    ts.emplace_back([&, c] {
      Client cl(host, port, ca);
      std::string body;
      for (auto& p : file_paths[static_cast<std::size_t>(c)]) {
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > seconds) break;
        if (cl.call("GET", p, token, "", body) != 302) {
          std::cerr << "content: " << body.substr(0, 300) << "\n";
          return;
        }
        if (cl.call("GET", after(cl.location, base), "", "", body) != 200) {
          std::cerr << "download: " << body.substr(0, 300) << "\n";
          return;
        }
        file_bytes += static_cast<long>(body.size());
        ++downloads;
      }
    });
  }
  for (auto& t : ts) t.join();
  dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  cpu = cpu_seconds(pid) - cpu0;
  std::printf("files: %ld downloads, %.1f MB in %.2f s = %.0f MB/s with %d clients\n", downloads.load(),
              file_bytes / 1e6, dt, file_bytes / 1e6 / dt, clients);
  if (pid > 0) std::printf("       emulator CPU %.2f s = %.0f MB per CPU-second\n", cpu, file_bytes / 1e6 / cpu);
  return 0;
}
