#include "m365vault/api/health.hpp"

#include <nlohmann/json.hpp>

#include <memory>

namespace m365vault::api {

using boost::asio::awaitable;
using net::Request;
using net::Response;

void add_health_routes(net::Router& router, HealthOptions opts) {
  auto o = std::make_shared<HealthOptions>(std::move(opts));

  router.add("GET", "/healthz", [](Request&) -> awaitable<Response> {
    co_return Response::json(200, {{"status", "ok"}});
  });

  router.add("GET", "/readyz", [o](Request& req) -> awaitable<Response> {
    nlohmann::json checks = nlohmann::json::object();
    std::string failed;
    for (auto& c : o->checks) {
      auto problem = co_await c.check(o->ready_timeout);
      if (o->metrics)
        o->metrics->gauge("m365vault_dependency_up", "1 when the dependency answered its last readiness check",
                          {{"dependency", c.name}})
            .set(problem ? 0 : 1);
      checks[c.name] = problem ? *problem : "ok";
      if (problem) failed += (failed.empty() ? "" : "; ") + c.name + ": " + *problem;
    }
    if (failed.empty()) co_return Response::json(200, {{"status", "ready"}, {"checks", checks}});
    auto res = Response::problem(Errc::unavailable, "not ready: " + failed, req.request_id);
    auto body = nlohmann::json::parse(res.body);
    body["checks"] = checks;
    res.body = body.dump();
    co_return res;
  });

  router.add("GET", "/metrics", [o](Request&) -> awaitable<Response> {
    co_return Response::text(200, o->metrics ? o->metrics->render() : std::string(),
                             "text/plain; version=0.0.4; charset=utf-8");
  });
}

}  // namespace m365vault::api
