#include "m365vault/storage/metered_store.hpp"

#include <chrono>

#include "m365vault/core/error.hpp"

namespace m365vault::storage {

namespace {
const std::vector<double> kLatencyBounds = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30};
}

MeteredStore::MeteredStore(ObjectStore& inner, MetricsRegistry& metrics, std::string name)
    : inner_(inner), metrics_(metrics), name_(std::move(name)) {}

template <class F>
auto MeteredStore::timed(const char* op, F&& f) -> decltype(f()) {
  auto t0 = std::chrono::steady_clock::now();
  auto record = [&](const char* outcome) {
    metrics_
        .counter("m365vault_store_requests_total", "Object store operations by outcome.",
                 {{"store", name_}, {"op", op}, {"outcome", outcome}})
        .inc();
    metrics_
        .histogram("m365vault_store_request_seconds", "Object store operation latency.", kLatencyBounds,
                   {{"store", name_}, {"op", op}})
        .observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
  try {
    if constexpr (std::is_void_v<decltype(f())>) {
      f();
      record("ok");
    } else {
      auto r = f();
      record("ok");
      return r;
    }
  } catch (const Error& e) {
    record(info(e.code()).code.data());
    throw;
  } catch (...) {
    record("internal");
    throw;
  }
}

void MeteredStore::put(std::string_view key, std::string_view data, const PutOptions& options) {
  timed("put", [&] { inner_.put(key, data, options); });
  metrics_.counter("m365vault_store_bytes_total", "Bytes moved to and from the object store.",
                   {{"store", name_}, {"direction", "out"}}).inc(static_cast<double>(data.size()));
}

std::optional<std::string> MeteredStore::get(std::string_view key, ByteRange range) {
  auto r = timed("get", [&] { return inner_.get(key, range); });
  if (r)
    metrics_.counter("m365vault_store_bytes_total", "Bytes moved to and from the object store.",
                     {{"store", name_}, {"direction", "in"}}).inc(static_cast<double>(r->size()));
  return r;
}

std::optional<ObjectInfo> MeteredStore::stat(std::string_view key) {
  return timed("stat", [&] { return inner_.stat(key); });
}

ListPage MeteredStore::list(std::string_view prefix, std::string_view token, std::size_t max_keys) {
  return timed("list", [&] { return inner_.list(prefix, token, max_keys); });
}

void MeteredStore::remove(std::string_view key) {
  timed("remove", [&] { inner_.remove(key); });
}

}  // namespace m365vault::storage
