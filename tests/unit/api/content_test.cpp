// Item content downloads over a fake reader: ranges, ETags, types and file names.
#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "m365vault/api/content.hpp"
#include "m365vault/core/error.hpp"

using namespace m365vault;
using namespace m365vault::api;

namespace {

// The "repository": each blob id is 32 bytes whose first byte indexes a part.
class FakeReader : public ContentReader {
 public:
  std::vector<std::string> parts;
  int calls = 0;
  boost::asio::awaitable<void> read(const std::vector<std::string>& blob_ids, std::uint64_t offset, std::uint64_t length,
                                    net::BodySink& sink) override {
    ++calls;
    std::string all;
    for (auto& id : blob_ids) all += parts.at(static_cast<unsigned char>(id[0]));
    co_await sink.write(std::string_view(all).substr(offset, length));
  }
};

class StringSink : public net::BodySink {
 public:
  std::string out;
  boost::asio::awaitable<void> write(std::string_view bytes) override {
    out.append(bytes);
    co_return;
  }
};

storage::ItemVersion file(const std::string& name, const std::string& content, int parts) {
  storage::ItemVersion v;
  v.item_id = "7";
  v.version_id = "42";
  v.kind = "file";
  v.name = name;
  v.content_size = static_cast<long long>(content.size());
  v.content_sha256 = std::string(32, '\x01');
  for (int i = 0; i < parts; ++i) v.content_blobs.push_back(std::string(1, static_cast<char>(i)) + std::string(31, 'x'));
  return v;
}

std::string body_of(net::Response& res) {
  if (!res.stream) return "";
  boost::asio::io_context io;
  StringSink sink;
  auto f = boost::asio::co_spawn(io, res.stream(sink), boost::asio::use_future);
  io.run();
  f.get();
  return sink.out;
}

net::Request get(std::vector<std::pair<std::string, std::string>> headers = {}) {
  net::Request r;
  r.method = "GET";
  for (auto& [k, v] : headers) r.headers.set(k, v);
  return r;
}

}  // namespace

TEST_CASE("content: the whole content, its type, name and ETag", "[unit]") {
  FakeReader reader;
  reader.parts = {"hello ", "world"};
  auto v = file("report Q1.pdf", "hello world", 2);
  auto res = content_response(get(), v, reader);
  CHECK(res.status == 200);
  CHECK(res.content_length == std::optional<std::uint64_t>(11));
  CHECK(res.headers.get("Content-Type") == std::optional<std::string_view>("application/pdf"));
  CHECK(res.headers.get("Accept-Ranges") == std::optional<std::string_view>("bytes"));
  std::string etag = "\"";
  for (int i = 0; i < 32; ++i) etag += "01";
  etag += "\"";
  CHECK(res.headers.get("ETag") == std::optional<std::string_view>(etag));
  CHECK(res.headers.get("Content-Disposition") ==
        std::optional<std::string_view>("attachment; filename=\"report Q1.pdf\"; filename*=UTF-8''report%20Q1.pdf"));
  CHECK(body_of(res) == "hello world");
}

TEST_CASE("content: byte ranges across blobs, suffix ranges and open ends", "[unit]") {
  FakeReader reader;
  reader.parts = {"hello ", "world"};
  auto v = file("a.txt", "hello world", 2);
  auto r1 = content_response(get({{"Range", "bytes=4-7"}}), v, reader);
  CHECK(r1.status == 206);
  CHECK(r1.headers.get("Content-Range") == std::optional<std::string_view>("bytes 4-7/11"));
  CHECK(body_of(r1) == "o wo");
  auto r2 = content_response(get({{"Range", "bytes=-3"}}), v, reader);
  CHECK(body_of(r2) == "rld");
  auto r3 = content_response(get({{"Range", "bytes=6-"}}), v, reader);
  CHECK(body_of(r3) == "world");
  auto r4 = content_response(get({{"Range", "bytes=6-1000"}}), v, reader);
  CHECK(r4.headers.get("Content-Range") == std::optional<std::string_view>("bytes 6-10/11"));
  // Several ranges or nonsense: the whole content, as RFC 9110 allows.
  CHECK(content_response(get({{"Range", "bytes=0-1,3-4"}}), v, reader).status == 200);
  CHECK(content_response(get({{"Range", "lines=1-2"}}), v, reader).status == 200);
  CHECK(content_response(get({{"Range", "bytes=5-2"}}), v, reader).status == 200);
  // Outside the content: 416.
  CHECK_THROWS_MATCHES(content_response(get({{"Range", "bytes=11-"}}), v, reader), Error,
                       Catch::Predicate<Error>([](const Error& e) { return e.code() == Errc::range_not_satisfiable; }));
  CHECK(info(Errc::range_not_satisfiable).http_status == 416);
}

TEST_CASE("content: conditional requests by ETag", "[unit]") {
  FakeReader reader;
  reader.parts = {"hello ", "world"};
  auto v = file("a.txt", "hello world", 2);
  auto etag = content_etag(v);
  auto nm = content_response(get({{"If-None-Match", etag}}), v, reader);
  CHECK(nm.status == 304);
  CHECK_FALSE(nm.stream);
  // A list of cached validators, a weak one, or `*` match too (weak comparison);
  // a list of others does not.
  CHECK(content_response(get({{"If-None-Match", "\"old\", " + etag}}), v, reader).status == 304);
  CHECK(content_response(get({{"If-None-Match", "W/" + etag}}), v, reader).status == 304);
  CHECK(content_response(get({{"If-None-Match", "*"}}), v, reader).status == 304);
  CHECK(content_response(get({{"If-None-Match", "\"old\", W/\"older\""}}), v, reader).status == 200);
  // If-Range compares strongly: a weak validator never applies the range.
  CHECK(content_response(get({{"Range", "bytes=0-1"}, {"If-Range", "W/" + etag}}), v, reader).status == 200);
  // If-Range with another validator: the range is ignored, the whole new content comes back.
  CHECK(content_response(get({{"Range", "bytes=0-1"}, {"If-Range", "\"old\""}}), v, reader).status == 200);
  CHECK(content_response(get({{"Range", "bytes=0-1"}, {"If-Range", etag}}), v, reader).status == 206);
  v.content_sha256.reset();
  CHECK(content_etag(v) == "\"v42\"");
}

TEST_CASE("content: messages download as .eml, names are made safe", "[unit]") {
  storage::ItemVersion m;
  m.item_id = "9";
  m.kind = "message";
  m.name = "Re: \"budget\" / plan";
  CHECK(content_type_of(m) == "message/rfc822");
  CHECK(content_disposition(m) ==
        "attachment; filename=\"Re_ _budget_ _ plan.eml\"; filename*=UTF-8''Re%3A%20%22budget%22%20%2F%20plan.eml");
  // Every character Windows refuses in a file name, and control characters, are '_'
  // in the plain name; the exact name stays in filename*.
  m.name = "a\\b/c:d*e?f\"g<h>i|j\tk\x01l;m";
  CHECK(content_disposition(m).rfind("attachment; filename=\"a_b_c_d_e_f_g_h_i_j_k_l_m.eml\"; filename*=UTF-8''", 0) == 0);
  m.name = "Grüße";
  CHECK(content_disposition(m) == "attachment; filename=\"Gr__e.eml\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe.eml");
  storage::ItemVersion unknown;
  unknown.kind = "file";
  unknown.name = "blob.xyz";
  CHECK(content_type_of(unknown) == "application/octet-stream");
  unknown.content_type = "text/markdown";
  CHECK(content_type_of(unknown) == "text/markdown");
}
