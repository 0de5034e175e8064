#pragma once
// MeteredStore: wraps any ObjectStore and records each operation in the metrics
// registry (requests by operation and outcome, bytes moved, latency), so /metrics
// shows what the repository costs in object-store requests. A wrapper, like every
// cross-cutting concern around the store, so no store implements it twice.
#include <memory>

#include "m365vault/core/metrics.hpp"
#include "m365vault/storage/object_store.hpp"

namespace m365vault::storage {

class MeteredStore final : public ObjectStore {
 public:
  // `inner` and `metrics` must outlive this. `name` labels the series (store="...").
  MeteredStore(ObjectStore& inner, MetricsRegistry& metrics, std::string name);

  Capabilities capabilities() const override { return inner_.capabilities(); }
  std::string describe() const override { return inner_.describe(); }
  void put(std::string_view key, std::string_view data, const PutOptions& options = {}) override;
  std::optional<std::string> get(std::string_view key, ByteRange range = {}) override;
  std::optional<ObjectInfo> stat(std::string_view key) override;
  ListPage list(std::string_view prefix, std::string_view token = {}, std::size_t max_keys = 1000) override;
  void remove(std::string_view key) override;

 private:
  template <class F>
  auto timed(const char* op, F&& f) -> decltype(f());
  ObjectStore& inner_;
  MetricsRegistry& metrics_;
  std::string name_;
};

}  // namespace m365vault::storage
