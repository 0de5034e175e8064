#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <nlohmann/json.hpp>

#include "m365vault/net/router.hpp"

using namespace m365vault;
using namespace m365vault::net;

namespace {
Response run(const Router& r, Request& req) {
  boost::asio::io_context ioc;
  auto f = boost::asio::co_spawn(ioc, r.dispatch(req), boost::asio::use_future);
  ioc.run();
  return f.get();
}
Handler echo(std::string tag) {
  return [tag](Request& req) -> boost::asio::awaitable<Response> {
    nlohmann::json j = {{"tag", tag}, {"params", req.params}};
    co_return Response::json(200, j);
  };
}
}  // namespace

TEST_CASE("router matches templates and extracts parameters", "[unit]") {
  Router r;
  r.add("GET", "/api/v1/runs", echo("list"));
  r.add("GET", "/api/v1/runs/{id}", echo("get"));
  r.add("POST", "/api/v1/runs/{id}/cancel", echo("cancel"));

  Request req;
  req.method = "GET";
  req.path = "/api/v1/runs/42";
  auto res = run(r, req);
  REQUIRE(res.status == 200);
  auto j = nlohmann::json::parse(res.body);
  CHECK(j["tag"] == "get");
  CHECK(j["params"]["id"] == "42");
  CHECK(req.route == "/api/v1/runs/{id}");
}

TEST_CASE("router answers 404 and 405 as problem+json", "[unit]") {
  Router r;
  r.add("POST", "/api/v1/runs/{id}/cancel", echo("cancel"));
  Request req;
  req.method = "GET";
  req.path = "/api/v1/runs/1/cancel";
  req.request_id = "rid";
  auto res = run(r, req);
  CHECK(res.status == 405);
  CHECK(res.headers.get("Allow").value_or("") == "POST");
  CHECK(res.headers.get("Content-Type").value_or("") == "application/problem+json");
  auto j = nlohmann::json::parse(res.body);
  CHECK(j["code"] == "method_not_allowed");
  CHECK(j["request_id"] == "rid");

  Request other;
  other.method = "GET";
  other.path = "/nope";
  auto nf = run(r, other);
  CHECK(nf.status == 404);
  CHECK(nlohmann::json::parse(nf.body)["code"] == "not_found");
}

TEST_CASE("query parameters are percent-decoded", "[unit]") {
  Request req;
  req.query = "q=hello+world&owner=a%40b.com&empty&x=%zz";
  CHECK(req.query_param("q") == std::optional<std::string>("hello world"));
  CHECK(req.query_param("owner") == std::optional<std::string>("a@b.com"));
  CHECK(req.query_param("empty") == std::optional<std::string>(""));
  CHECK_FALSE(req.query_param("x").has_value());
  CHECK_FALSE(req.query_param("missing").has_value());
  CHECK_FALSE(percent_decode("%4").has_value());
  CHECK(percent_decode("%41%42") == std::optional<std::string>("AB"));
}
