#pragma once
// GET /healthz (liveness), GET /readyz (readiness: every dependency answers in
// time) and GET /metrics (Prometheus text). Health endpoints need no token.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "m365vault/core/metrics.hpp"
#include "m365vault/net/router.hpp"

namespace m365vault::api {

// A dependency readiness depends on. check() returns nullopt when it is fine,
// else the reason; it must finish within the timeout it is given.
struct ReadinessCheck {
  std::string name;  // "database", "repository", ...
  std::function<boost::asio::awaitable<std::optional<std::string>>(std::chrono::milliseconds)> check;
};

struct HealthOptions {
  std::vector<ReadinessCheck> checks;
  std::chrono::milliseconds ready_timeout{2000};
  MetricsRegistry* metrics = nullptr;  // required for /metrics
};

void add_health_routes(net::Router& router, HealthOptions opts);

}  // namespace m365vault::api
