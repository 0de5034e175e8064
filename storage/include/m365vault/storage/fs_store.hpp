#pragma once
// FsStore: the default object store, a directory on a local (or mounted) filesystem.
// Object "a/b/c" is the file <root>/a/b/c. A put writes a temporary file beside the
// target (".<name>.tmp-XXXXXX", never listed), fsyncs it, renames it over the target
// and fsyncs the directory, so a crash leaves the old object or the new one, and
// concurrent writers of one key each replace it whole (the last rename wins).
#include <chrono>
#include <filesystem>

#include "m365vault/storage/object_store.hpp"

namespace m365vault::storage {

class FsStore final : public ObjectStore {
 public:
  // `root` must exist (the repository's `init` creates it); throws Error(Errc::storage)
  // when it is not a directory.
  explicit FsStore(std::filesystem::path root);

  Capabilities capabilities() const override;
  std::string describe() const override;
  void put(std::string_view key, std::string_view data, const PutOptions& options = {}) override;
  std::optional<std::string> get(std::string_view key, ByteRange range = {}) override;
  std::optional<ObjectInfo> stat(std::string_view key) override;
  // Walks the directory tree below the prefix's directory on every call (tokens are
  // the last key returned), which is fine for the repository's few thousand keys
  // per directory.
  ListPage list(std::string_view prefix, std::string_view token = {}, std::size_t max_keys = 1000) override;
  void remove(std::string_view key) override;

  // Deletes the temporary files of writers that crashed mid-put: dot files named
  // ".<name>.tmp-XXXXXX" last modified more than `age` ago (a live writer's file is
  // younger). For verify --repair / prune. Returns how many it removed.
  std::size_t remove_stale_temporaries(std::chrono::seconds age);

  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
};

}  // namespace m365vault::storage
