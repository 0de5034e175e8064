#pragma once
// A small Prometheus registry: counters, gauges and histograms with labels,
// rendered in the text exposition format (version 0.0.4). Thread-safe; metric
// handles stay valid for the registry's lifetime.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace m365vault {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(double v = 1.0);
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

class Gauge {
 public:
  void set(double v) { v_.store(v, std::memory_order_relaxed); }
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf
    double sum;
    uint64_t count;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> buckets_;  // per bound, then +Inf (not cumulative)
  double sum_ = 0;
  uint64_t count_ = 0;
};

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Returns the series of a family (created on first use). The family's help text
  // and type are fixed by the first call.
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, const std::vector<double>& bounds,
                       const Labels& labels = {});
  // A gauge computed when scraped (for example "is the database up").
  void callback_gauge(const std::string& name, const std::string& help, std::function<double()> fn);

  // The whole registry in Prometheus text format.
  std::string render() const;

 private:
  struct Family;
  Family& family(const std::string& name, const std::string& help, const char* type);
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>> families_;
};

// Escapes a label value for the text format.
std::string prometheus_escape(const std::string& v);

}  // namespace m365vault
