// Error predicates on the real payloads of ../shared/graph/fixtures (and on the
// bodies Graph sends that have no fixture: empty, not JSON, odd case).
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "emulator_support.hpp"
#include "m365vault/graph/errors.hpp"

using namespace m365vault::graph;

namespace {

std::string fixture_text(const std::string& rel) {
  std::ifstream in(m365vault::test::fixtures_dir() + "/" + rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  INFO("fixture " << rel);
  REQUIRE(!ss.str().empty());
  return ss.str();
}

GraphError from_fixture(int status, const std::string& rel) {
  return make_graph_error(status, fixture_text(rel), "", std::nullopt, "", "get '/v1.0/x'");
}

GraphError from_body(int status, const std::string& body) {
  return make_graph_error(status, body, "", std::nullopt, "", "get '/v1.0/x'");
}

}  // namespace

TEST_CASE("invalid delta: Outlook 410, directory 400, drive 410 resyncRequired, any case", "[unit]") {
  auto outlook = from_fixture(410, "errors/delta-410-syncstatenotfound-outlook.json");
  CHECK(outlook.code() == "SyncStateNotFound");
  CHECK(outlook.request_id() == "1137f277-eab4-4b9b-bb13-2ceb880bffcb");
  CHECK(is_invalid_delta(outlook));
  CHECK_FALSE(is_not_found(outlook));
  CHECK_FALSE(is_throttled(outlook));
  CHECK(is_invalid_delta(from_fixture(410, "errors/delta-syncstatenotfound-outlook-2.json")));
  auto directory = from_fixture(400, "errors/delta-400-syncstatenotfound-directory.json");
  CHECK(directory.code() == "syncStateNotFound");
  CHECK(is_invalid_delta(directory));
  CHECK(is_invalid_delta(from_fixture(410, "errors/drive-410-resyncrequired.json")));
  CHECK(is_invalid_delta(from_body(400, R"({"error":{"code":"SYNCSTATEINVALID","message":"x"}})")));
  CHECK(is_invalid_delta(from_body(410, R"({"error":{"code":"resyncRequired","innerError":{"code":"resyncApplyDifferences"}}})")));
  // 410 is a reset whatever the body says (CONTRACT §3 "handle 410 regardless of code").
  CHECK(is_invalid_delta(from_body(410, "")));
  // A malformed drive token is a plain bad request, not a resync.
  CHECK_FALSE(is_invalid_delta(from_fixture(400, "errors/drive-400-malformed-sync-token.json")));
}

TEST_CASE("not found, mailbox not enabled, auth, access denied, throttled", "[unit]") {
  CHECK(is_not_found(from_fixture(404, "errors/drive-404-itemnotfound-consumer.json")));
  CHECK(is_not_found(from_fixture(404, "errors/drive-404-name-incompatible-unicode.json")));
  CHECK(is_not_found(from_body(404, R"({"error":{"code":"ErrorItemNotFound","message":"The specified object was not found in the store."}})")));
  CHECK(is_not_found(from_body(404, R"({"error":{"code":"ErrorSyncFolderNotFound"}})")));
  CHECK(is_not_found(from_body(404, "")));

  auto mailbox = from_body(404, R"({"error":{"code":"MailboxNotEnabledForRESTAPI","message":"REST API is not yet supported for this mailbox."}})");
  CHECK(is_mailbox_not_enabled(mailbox));
  CHECK_FALSE(is_not_found(mailbox));  // the owner is skipped, not an item missing
  CHECK(is_mailbox_not_enabled(from_body(404, R"({"error":{"code":"resourcenotfound"}})")));
  CHECK(is_mailbox_not_enabled(from_body(404, R"({"error":{"code":"ErrorInvalidUser"}})")));

  auto empty_token = from_fixture(401, "errors/error-401-access-token-empty.json");
  CHECK(is_auth_failure(empty_token));
  CHECK(empty_token.graph_message() == "Access token is empty.");
  CHECK(is_auth_failure(from_fixture(401, "errors/error-401-compacttoken.json")));
  auto denied = from_fixture(403, "errors/error-403-with-client-request-id.json");
  CHECK(is_access_denied(denied));
  CHECK_FALSE(is_auth_failure(denied));
  CHECK(denied.request_id() == "93b6f17e-c05d-4f45-ad2a-6665c708d8a0");

  auto concurrency = from_fixture(429, "errors/error-429-outlook-mailboxconcurrency.json");
  CHECK(is_throttled(concurrency));
  CHECK(concurrency.has_code("applicationthrottled"));
  auto graph429 = from_fixture(429, "throttling/throttling-429-graph.json");
  CHECK(is_throttled(graph429));
  CHECK(graph429.code() == "TooManyRequests");
  CHECK(graph429.inner_code() == "429");
  CHECK(graph429.request_id() == "94fb3b52-452a-4535-a601-69e0a90e3aa2");
}

TEST_CASE("corrupt items, inner codes, and bodies that are empty or not JSON", "[unit]") {
  CHECK(is_corrupt_item(from_body(500, R"({"error":{"code":"ErrorCorruptData","message":"Data is corrupt."}})")));
  CHECK(is_corrupt_item(from_body(500, R"({"error":{"code":"ErrorCannotOpenFileAttachment","message":"OLE conversion failed for an attachment."}})")));
  CHECK_FALSE(is_transient(from_body(500, R"({"error":{"code":"ErrorCorruptData"}})")));
  CHECK(is_malware(from_body(400, R"({"error":{"code":"malwareDetected"}})")));
  CHECK(is_already_exists(from_body(409, R"({"error":{"code":"ErrorFolderExists"}})")));

  auto overlap = from_fixture(416, "errors/drive-fragment-overlap.json");
  CHECK(overlap.code() == "invalidRange");
  CHECK(overlap.inner_code() == "fragmentOverlap");
  CHECK(overlap.has_code("FRAGMENTOVERLAP"));

  auto not_impl = from_fixture(501, "errors/error-501-notimplemented.json");
  CHECK_FALSE(is_throttled(not_impl));
  CHECK_FALSE(is_not_found(not_impl));
  CHECK_FALSE(is_invalid_delta(not_impl));
  CHECK_FALSE(is_transient(not_impl));

  auto empty503 = make_graph_error(503, "", "req-1", std::chrono::milliseconds(1500), "", "get '/v1.0/users'");
  CHECK(is_transient(empty503));
  CHECK(empty503.code().empty());
  CHECK(empty503.request_id() == "req-1");
  CHECK(empty503.retry_after() == std::chrono::milliseconds(1500));
  CHECK(std::string(empty503.what()) == "get '/v1.0/users': 503 (empty body) [request-id req-1]");
  CHECK(empty503.code() == "");
  CHECK(empty503.code() == std::string());
  auto html = from_body(502, "<html>Bad gateway</html>");
  CHECK(is_transient(html));
  CHECK(html.code().empty());
  CHECK(from_body(200, "{\"error\":\"not an object\"}").code().empty());
  // The 2021 spelling "innererror" and a numeric code do not confuse the parser.
  auto old = from_body(400, R"({"error":{"code":"invalidRequest","innererror":{"code":"badArgument","innererror":{"code":"malformedToken"}}}})");
  CHECK(old.inner_code() == "malformedToken");
  CHECK(from_body(400, R"({"error":{"code":7}})").code().empty());
}
