#include "m365vault/core/metrics.hpp"

#include <cmath>
#include <cstdio>
#include <variant>

namespace m365vault {

void Counter::inc(double v) {
  double cur = v_.load(std::memory_order_relaxed);
  while (!v_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), buckets_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  std::lock_guard lk(mu_);
  ++buckets_[i];
  sum_ += v;
  ++count_;
}

Histogram::Snapshot Histogram::snapshot() const {
  std::lock_guard lk(mu_);
  Snapshot s{bounds_, {}, sum_, count_};
  uint64_t acc = 0;
  for (auto b : buckets_) {
    acc += b;
    s.cumulative.push_back(acc);
  }
  return s;
}

struct MetricsRegistry::Family {
  std::string help;
  std::string type;
  std::map<Labels, std::unique_ptr<Counter>> counters;
  std::map<Labels, std::unique_ptr<Gauge>> gauges;
  std::map<Labels, std::unique_ptr<Histogram>> histograms;
  std::function<double()> callback;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Family& MetricsRegistry::family(const std::string& name, const std::string& help, const char* type) {
  auto& f = families_[name];
  if (!f) {
    f = std::make_unique<Family>();
    f->help = help;
    f->type = type;
  }
  return *f;
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lk(mu_);
  auto& s = family(name, help, "counter").counters[labels];
  if (!s) s = std::make_unique<Counter>();
  return *s;
}

Gauge& MetricsRegistry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lk(mu_);
  auto& s = family(name, help, "gauge").gauges[labels];
  if (!s) s = std::make_unique<Gauge>();
  return *s;
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      const std::vector<double>& bounds, const Labels& labels) {
  std::lock_guard lk(mu_);
  auto& s = family(name, help, "histogram").histograms[labels];
  if (!s) s = std::make_unique<Histogram>(bounds);
  return *s;
}

void MetricsRegistry::callback_gauge(const std::string& name, const std::string& help, std::function<double()> fn) {
  std::lock_guard lk(mu_);
  family(name, help, "gauge").callback = std::move(fn);
}

std::string prometheus_escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

namespace {

std::string fmt_value(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string fmt_labels(const Labels& labels, const std::string& extra_k = {}, const std::string& extra_v = {}) {
  if (labels.empty() && extra_k.empty()) return {};
  std::string out = "{";
  bool first = true;
  for (auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k + "=\"" + prometheus_escape(v) + "\"";
  }
  if (!extra_k.empty()) {
    if (!first) out += ',';
    out += extra_k + "=\"" + extra_v + "\"";
  }
  return out + "}";
}

}  // namespace

std::string MetricsRegistry::render() const {
  std::lock_guard lk(mu_);
  std::string out;
  for (auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f->help + "\n";
    out += "# TYPE " + name + " " + f->type + "\n";
    if (f->callback) out += name + " " + fmt_value(f->callback()) + "\n";
    for (auto& [l, c] : f->counters) out += name + fmt_labels(l) + " " + fmt_value(c->value()) + "\n";
    for (auto& [l, g] : f->gauges) out += name + fmt_labels(l) + " " + fmt_value(g->value()) + "\n";
    for (auto& [l, h] : f->histograms) {
      auto s = h->snapshot();
      for (size_t i = 0; i < s.bounds.size(); ++i)
        out += name + "_bucket" + fmt_labels(l, "le", fmt_value(s.bounds[i])) + " " +
               std::to_string(s.cumulative[i]) + "\n";
      out += name + "_bucket" + fmt_labels(l, "le", "+Inf") + " " + std::to_string(s.cumulative.back()) + "\n";
      out += name + "_sum" + fmt_labels(l) + " " + fmt_value(s.sum) + "\n";
      out += name + "_count" + fmt_labels(l) + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

}  // namespace m365vault
