#pragma once
// The object store: the one small interface between the repository format and the
// places bytes live (a local directory, an S3-compatible service). Retry, fault
// injection and logging are wrappers around it, never special cases inside it.
//
// Contract (every implementation passes tests/support/storage/object_store_contract.cpp):
//
// - Keys are validated by validate_key(): 1..1024 bytes of [A-Za-z0-9._-/], '/'
//   separated segments that are non-empty and do not start with '.'. An invalid key
//   throws Error(Errc::bad_request) before any I/O.
// - Every operation is blocking and thread-safe: many threads may call one store at
//   once (the repository uploads packs in parallel).
// - Failures throw Error with Errc::storage (I/O, full disk, server errors after the
//   implementation's own retries, timeouts as Errc::timeout) or Errc::storage_denied
//   (credentials, permissions, read-only media). Messages name the store and the key.
// - Absence is a value, not a failure: get/stat return nullopt, remove succeeds.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace m365vault::storage {

struct Capabilities {
  // A put over an existing key replaces it in one step: a reader sees the old or the
  // new object, never a mix or nothing.
  bool atomic_replace = false;
  // put() honours PutOptions::retain_until (S3 Object Lock, COMPLIANCE mode).
  bool object_lock = false;
  // list() sees every put that returned before it started (read-after-write listing).
  bool consistent_list = false;
};

struct PutOptions {
  // When set and the store has object_lock: the object cannot be deleted or
  // overwritten before this instant. Ignored by stores without object_lock.
  std::optional<std::chrono::system_clock::time_point> retain_until;
};

struct ObjectInfo {
  std::string key;
  std::uint64_t size = 0;
  friend bool operator==(const ObjectInfo&, const ObjectInfo&) = default;
};

struct ListPage {
  std::vector<ObjectInfo> objects;  // in ascending byte order of key
  std::string next_token;           // empty when this is the last page
};

// A byte range of an object: `length` bytes from `offset` (to the end when nullopt).
struct ByteRange {
  std::uint64_t offset = 0;
  std::optional<std::uint64_t> length;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // What this store guarantees beyond the base contract.
  virtual Capabilities capabilities() const = 0;
  // A name for messages and logs ("file:/srv/repo", "s3://bucket/prefix"); no secrets.
  virtual std::string describe() const = 0;

  // Stores `data` under `key`, replacing any object there. On return the object is
  // durable (fsync'd, or acknowledged by the service) and visible to get/stat/list.
  // A failed or interrupted put leaves either the previous object or no object,
  // never a partial one under `key`.
  virtual void put(std::string_view key, std::string_view data, const PutOptions& options = {}) = 0;

  // The object's bytes in `range` (clamped to the object's end), or nullopt when no
  // object has this key. A range starting at or past the end of a non-empty object,
  // or a zero length, throws Error(Errc::bad_request).
  virtual std::optional<std::string> get(std::string_view key, ByteRange range = {}) = 0;

  // Size of the object, or nullopt when absent.
  virtual std::optional<ObjectInfo> stat(std::string_view key) = 0;

  // One page of the objects whose keys start with `prefix`, at most `max_keys`
  // (1..1000) of them, in ascending key order. Pass the previous page's next_token to
  // continue (an empty token starts from the beginning); a token is opaque and only
  // valid for the same prefix. Every object present for the whole listing appears
  // exactly once across the pages.
  virtual ListPage list(std::string_view prefix, std::string_view token = {}, std::size_t max_keys = 1000) = 0;

  // Deletes the object. Removing an absent key succeeds (idempotent).
  virtual void remove(std::string_view key) = 0;
};

// Throws Error(Errc::bad_request) naming the key when it breaks the key rules above.
void validate_key(std::string_view key);
// Same rules for a listing prefix, which may be empty and may end with '/'.
void validate_prefix(std::string_view prefix);

// Every object under `prefix`, following pagination (a convenience over list()).
std::vector<ObjectInfo> list_all(ObjectStore& store, std::string_view prefix);

}  // namespace m365vault::storage
