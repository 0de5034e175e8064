// S3Store over HTTPS: a minimal S3 stand-in (the project's Beast server with TLS,
// certificate from a throwaway CA made with the openssl CLI) proves that the
// configured CA is trusted and that the system's trust store alone is not.
#include <catch2/catch.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "m365vault/core/error.hpp"
#include "m365vault/core/process.hpp"
#include "m365vault/net/server.hpp"
#include "m365vault/storage/s3_store.hpp"
#include "support/temp_dir.hpp"
#include "support/log.hpp"

using namespace m365vault;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {
void openssl(const test::TempDir& d, std::vector<std::string> args) {
  ProcessOptions o;
  o.argv = {"openssl"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.capture_output = true;
  auto r = run_process(o);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  (void)d;
}

// A throwaway CA and a server certificate for localhost / 127.0.0.1.
void make_certs(const test::TempDir& d) {
  auto p = [&](const char* f) { return (d / f).string(); };
  test::write_file(d / "ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl(d, {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
              p("ca.key"), "-out", p("ca.pem"), "-days", "2", "-subj", "/CN=m365vault test CA"});
  openssl(d, {"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
              p("srv.key"), "-out", p("srv.csr"), "-subj", "/CN=localhost"});
  openssl(d, {"x509", "-req", "-in", p("srv.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
              "-out", p("srv.pem"), "-days", "2", "-extfile", p("ext")});
}

struct TlsS3 {
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{ioc.get_executor()};
  std::unique_ptr<net::HttpServer> server;
  std::thread thread;
  std::mutex mu;
  std::map<std::string, std::string> objects;

  explicit TlsS3(const test::TempDir& d) {
    net::ServerOptions o;
    o.port = 0;
    o.tls_cert_file = (d / "srv.pem").string();
    o.tls_key_file = (d / "srv.key").string();
    auto log = test::quiet_logger("s3");
    server = std::make_unique<net::HttpServer>(
        ioc, o,
        [this](net::Request& r) -> asio::awaitable<net::Response> {
          std::lock_guard lock(mu);
          if (r.method == "PUT") {
            objects[r.path] = r.body;
            co_return net::Response::text(200, "");
          }
          auto it = objects.find(r.path);
          if (r.method == "GET" && it != objects.end())
            co_return net::Response::text(200, it->second, "application/octet-stream");
          co_return net::Response::text(404, "<Error><Code>NoSuchKey</Code></Error>", "application/xml");
        },
        log, nullptr);
    server->start();
    thread = std::thread([this] { ioc.run(); });
  }
  ~TlsS3() {
    std::promise<void> p;
    server->stop(1s, [&] { p.set_value(); });
    p.get_future().wait_for(5s);
    work.reset();
    ioc.stop();
    thread.join();
  }
};
}  // namespace

TEST_CASE("S3Store over HTTPS trusts the configured CA and only that", "[unit]") {
  test::TempDir d("s3tls");
  make_certs(d);
  TlsS3 s3(d);
  storage::S3Config c;
  c.endpoint = "https://localhost:" + std::to_string(s3.server->port());
  c.connect_address = "127.0.0.1";
  c.bucket = "b";
  c.access_key = "ak";
  c.secret_key = "sk";
  c.max_attempts = 1;

  SECTION("with the CA: works") {
    c.ca_file = (d / "ca.pem").string();
    storage::S3Store s(c, nullptr);
    s.put("packs/aa/x", "over tls");
    CHECK(s.get("packs/aa/x") == "over tls");
    CHECK_FALSE(s.get("packs/aa/missing").has_value());
  }
  SECTION("without it: the certificate is refused") {
    storage::S3Store s(c, nullptr);
    try {
      s.put("packs/aa/x", "over tls");
      FAIL("an untrusted certificate was accepted");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::storage);
      CHECK_THAT(e.what(), Catch::Contains("certificate verify failed"));
    }
    CHECK(s3.objects.empty());
  }
}
