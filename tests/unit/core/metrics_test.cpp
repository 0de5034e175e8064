#include <catch2/catch.hpp>

#include "m365vault/core/metrics.hpp"

using namespace m365vault;

TEST_CASE("metrics render in the Prometheus text format", "[unit]") {
  MetricsRegistry r;
  r.counter("x_requests_total", "requests", {{"route", "/a\"b"}, {"status", "200"}}).inc();
  r.counter("x_requests_total", "requests", {{"route", "/a\"b"}, {"status", "200"}}).inc(2);
  r.gauge("x_up", "up").set(1);
  auto& h = r.histogram("x_latency_seconds", "latency", {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  r.callback_gauge("x_db_up", "db", [] { return 0.0; });
  auto text = r.render();
  CHECK(text.find("# TYPE x_requests_total counter\n") != std::string::npos);
  CHECK(text.find("x_requests_total{route=\"/a\\\"b\",status=\"200\"} 3\n") != std::string::npos);
  CHECK(text.find("x_up 1\n") != std::string::npos);
  CHECK(text.find("x_latency_seconds_bucket{le=\"0.10000000000000001\"} 1\n") != std::string::npos);
  CHECK(text.find("x_latency_seconds_bucket{le=\"1\"} 2\n") != std::string::npos);
  CHECK(text.find("x_latency_seconds_bucket{le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(text.find("x_latency_seconds_count 3\n") != std::string::npos);
  CHECK(text.find("x_db_up 0\n") != std::string::npos);
}
