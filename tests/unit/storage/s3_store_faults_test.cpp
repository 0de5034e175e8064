// S3Store against a scripted server: what it retries, what it does not, and that
// a failed multipart upload is aborted. The real-server behaviour is in
// tests/integration/storage/s3_store_s3test.cpp.
#include <catch2/catch.hpp>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/s3_store.hpp"
#include "support/storage/scripted_server.hpp"
#include "support/storage/repo_fixtures.hpp"

using namespace m365vault;
using test::ScriptedReply;
using test::ScriptedRequest;
using test::ScriptedServer;

namespace {
storage::S3Config config(const ScriptedServer& srv) {
  storage::S3Config c;
  c.endpoint = srv.endpoint();
  c.bucket = "b";
  c.access_key = "ak";
  c.secret_key = "sk";
  c.max_attempts = 3;
  c.backoff_base = std::chrono::milliseconds(1);
  c.backoff_max = std::chrono::milliseconds(5);
  c.io_timeout = std::chrono::milliseconds(300);
  c.multipart_threshold = 5u << 20;
  c.part_size = 5u << 20;
  return c;
}

}  // namespace

using m365vault::test::code_of;

TEST_CASE("S3Store retries SlowDown and 503, then succeeds", "[unit]") {
  ScriptedServer srv([](const ScriptedRequest&, int i) {
    if (i == 0) return ScriptedReply::s3_error(503, "SlowDown");
    if (i == 1) return ScriptedReply::s3_error(500, "InternalError");
    return ScriptedReply::status(200);
  });
  storage::S3Store s(config(srv), nullptr);
  s.put("config", "hello");
  auto reqs = srv.requests();
  REQUIRE(reqs.size() == 3);
  for (auto& r : reqs) {
    CHECK(r.method == "PUT");
    CHECK(r.target == "/b/config");
    CHECK(r.body == "hello");
    CHECK(r.head.find("AWS4-HMAC-SHA256 Credential=ak/") != std::string::npos);
  }
  CHECK(s.stats().retries == 2);
}

TEST_CASE("S3Store gives up after max_attempts with the server's error", "[unit]") {
  ScriptedServer srv([](const ScriptedRequest&, int) { return ScriptedReply::s3_error(500, "InternalError"); });
  storage::S3Store s(config(srv), nullptr);
  std::string what;
  CHECK(code_of([&] { s.get("packs/aa/x"); }, &what) == Errc::storage);
  CHECK_THAT(what, Catch::Contains("500 InternalError") && Catch::Contains("packs/aa/x"));
  CHECK(srv.requests().size() == 3);
}

TEST_CASE("S3Store does not retry 403 and names the credentials", "[unit]") {
  ScriptedServer srv([](const ScriptedRequest&, int) { return ScriptedReply::s3_error(403, "SignatureDoesNotMatch"); });
  storage::S3Store s(config(srv), nullptr);
  std::string what;
  CHECK(code_of([&] { s.put("config", "x"); }, &what) == Errc::storage_denied);
  CHECK_THAT(what, Catch::Contains("SignatureDoesNotMatch") && Catch::Contains("secret key"));
  CHECK(srv.requests().size() == 1);
}

TEST_CASE("S3Store retries a response cut mid-body", "[unit]") {
  ScriptedServer srv([](const ScriptedRequest&, int i) {
    if (i == 0) return ScriptedReply{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel", true, {}};
    return ScriptedReply::status(200, "helloworld");
  });
  storage::S3Store s(config(srv), nullptr);
  CHECK(s.get("k") == "helloworld");
  CHECK(srv.requests().size() == 2);
}

TEST_CASE("S3Store times out a server that does not answer", "[unit]") {
  ScriptedServer srv([](const ScriptedRequest&, int) {
    ScriptedReply r = ScriptedReply::status(200);
    r.hang = std::chrono::milliseconds(2000);
    return r;
  });
  auto c = config(srv);
  c.max_attempts = 2;
  storage::S3Store s(c, nullptr);
  auto t0 = std::chrono::steady_clock::now();
  CHECK(code_of([&] { s.stat("k"); }) == Errc::timeout);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1900));
}

TEST_CASE("S3Store aborts a multipart upload whose part fails", "[unit]") {
  ScriptedServer srv([](const ScriptedRequest& r, int) {
    if (r.method == "POST" && r.target.find("uploads=") != std::string::npos)
      return ScriptedReply::status(200, "<InitiateMultipartUploadResult><UploadId>U1</UploadId></InitiateMultipartUploadResult>");
    if (r.method == "PUT" && r.target.find("partNumber=1&") != std::string::npos)
      return ScriptedReply::status(200, "", "ETag: \"e1\"\r\n");
    if (r.method == "PUT") return ScriptedReply::s3_error(500, "InternalError");
    if (r.method == "DELETE") return ScriptedReply::status(204);
    return ScriptedReply::s3_error(400, "Unexpected");
  });
  storage::S3Store s(config(srv), nullptr);
  CHECK(code_of([&] { s.put("packs/aa/big", std::string(11u << 20, 'x')); }) == Errc::storage);
  auto reqs = srv.requests();
  REQUIRE(!reqs.empty());
  CHECK(reqs.back().method == "DELETE");
  CHECK(reqs.back().target == "/b/packs/aa/big?uploadId=U1");
  // No complete request was ever sent.
  for (auto& r : reqs) CHECK_FALSE((r.method == "POST" && r.target.find("uploadId=") != std::string::npos));
}

TEST_CASE("S3Store refuses bad configuration before any I/O", "[unit]") {
  storage::S3Config c;
  c.bucket = "b";
  c.access_key = "a";
  c.secret_key = "s";
  c.endpoint = "ftp://x";
  CHECK(code_of([&] { storage::S3Store s(c, nullptr); }) == Errc::invalid_config);
  c.endpoint = "http://x";
  c.part_size = 1024;
  CHECK(code_of([&] { storage::S3Store s(c, nullptr); }) == Errc::invalid_config);
}

TEST_CASE("S3Store sends Object Lock retention when the bucket has it", "[unit]") {
  ScriptedServer srv([](const ScriptedRequest&, int) { return ScriptedReply::status(200); });
  auto c = config(srv);
  c.object_lock = true;
  storage::S3Store s(c, nullptr);
  CHECK(s.capabilities().object_lock);
  storage::PutOptions o;
  o.retain_until = std::chrono::system_clock::time_point(std::chrono::seconds(1893456000));  // 2030-01-01
  s.put("packs/aa/p", "data", o);
  auto head = srv.requests().at(0).head;
  for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  CHECK_THAT(head, Catch::Contains("x-amz-object-lock-mode: compliance"));
  CHECK_THAT(head, Catch::Contains("x-amz-object-lock-retain-until-date: 2030-01-01t00:00:00z"));
  CHECK_THAT(head, Catch::Contains("content-md5: jxd/of09/sibxsd3swam3a=="));  // MD5("data")
  // Signed, too.
  CHECK_THAT(head, Catch::Contains("x-amz-object-lock-mode;x-amz-object-lock-retain-until-date"));
}

TEST_CASE("S3Store reports a server that is down after its retries", "[unit]") {
  unsigned short port;
  {
    ScriptedServer srv([](const ScriptedRequest&, int) { return ScriptedReply::status(200); });
    port = srv.port();
  }  // closed: nothing listens there now
  storage::S3Config c;
  c.endpoint = "http://127.0.0.1:" + std::to_string(port);
  c.bucket = "b";
  c.access_key = "ak";
  c.secret_key = "sk";
  c.max_attempts = 2;
  c.backoff_base = std::chrono::milliseconds(1);
  storage::S3Store s(c, nullptr);
  std::string what;
  CHECK(code_of([&] { s.stat("config"); }, &what) == Errc::storage);
  CHECK_THAT(what, Catch::Contains("refused") && Catch::Contains("after 2 attempts"));
}
