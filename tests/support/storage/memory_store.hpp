#pragma once
// An in-memory ObjectStore for tests (never product code): the reference the
// contract suite is written against, plus a wrapper that fails chosen calls.
#include <atomic>
#include <functional>
#include <map>
#include <mutex>

#include "m365vault/core/error.hpp"
#include "m365vault/storage/object_store.hpp"

namespace m365vault::test {

class MemoryStore final : public storage::ObjectStore {
 public:
  storage::Capabilities capabilities() const override {
    storage::Capabilities c;
    c.atomic_replace = true;
    c.consistent_list = true;
    return c;
  }
  std::string describe() const override { return "memory:"; }
  void put(std::string_view key, std::string_view data, const storage::PutOptions& = {}) override {
    storage::validate_key(key);
    std::lock_guard lock(mu_);
    objects_[std::string(key)] = std::string(data);
  }
  std::optional<std::string> get(std::string_view key, storage::ByteRange range = {}) override {
    storage::validate_key(key);
    std::lock_guard lock(mu_);
    auto it = objects_.find(std::string(key));
    if (it == objects_.end()) return std::nullopt;
    const std::string& v = it->second;
    if ((range.length && *range.length == 0) || (range.offset >= v.size() && !(v.empty() && range.offset == 0)))
      throw Error(Errc::bad_request, "range outside object '" + std::string(key) + "'");
    return v.substr(range.offset, range.length ? *range.length : std::string::npos);
  }
  std::optional<storage::ObjectInfo> stat(std::string_view key) override {
    storage::validate_key(key);
    std::lock_guard lock(mu_);
    auto it = objects_.find(std::string(key));
    if (it == objects_.end()) return std::nullopt;
    return storage::ObjectInfo{it->first, it->second.size()};
  }
  storage::ListPage list(std::string_view prefix, std::string_view token = {}, std::size_t max_keys = 1000) override {
    storage::validate_prefix(prefix);
    std::lock_guard lock(mu_);
    storage::ListPage page;
    auto it = token.empty() ? objects_.lower_bound(std::string(prefix)) : objects_.upper_bound(std::string(token));
    for (; it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      if (page.objects.size() == max_keys) {
        page.next_token = page.objects.back().key;
        break;
      }
      page.objects.push_back({it->first, it->second.size()});
    }
    return page;
  }
  void remove(std::string_view key) override {
    storage::validate_key(key);
    std::lock_guard lock(mu_);
    objects_.erase(std::string(key));
  }

  // Direct access for tamper tests.
  std::map<std::string, std::string>& objects() { return objects_; }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> objects_;
};

// Forwards to another store and throws Error(Errc::storage) on the Nth call
// (counting every operation from 1), to prove that each step of a write sequence
// fails cleanly.
class FailingStore final : public storage::ObjectStore {
 public:
  FailingStore(storage::ObjectStore& inner, int fail_on) : inner_(inner), fail_on_(fail_on) {}
  storage::Capabilities capabilities() const override { return inner_.capabilities(); }
  std::string describe() const override { return "failing:" + inner_.describe(); }
  void put(std::string_view k, std::string_view d, const storage::PutOptions& o = {}) override {
    tick("put", k);
    inner_.put(k, d, o);
  }
  std::optional<std::string> get(std::string_view k, storage::ByteRange r = {}) override {
    tick("get", k);
    return inner_.get(k, r);
  }
  std::optional<storage::ObjectInfo> stat(std::string_view k) override {
    tick("stat", k);
    return inner_.stat(k);
  }
  storage::ListPage list(std::string_view p, std::string_view t = {}, std::size_t m = 1000) override {
    tick("list", p);
    return inner_.list(p, t, m);
  }
  void remove(std::string_view k) override {
    tick("remove", k);
    inner_.remove(k);
  }
  int calls() const { return calls_; }

 private:
  void tick(const char* op, std::string_view key) {
    if (++calls_ == fail_on_)
      throw Error(Errc::storage, std::string("injected failure: ") + op + " '" + std::string(key) + "'");
  }
  storage::ObjectStore& inner_;
  int fail_on_;
  std::atomic<int> calls_{0};
};

}  // namespace m365vault::test
