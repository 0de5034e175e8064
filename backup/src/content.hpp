#pragma once
// Content into the repository from coroutines. The Repository is blocking and
// single-writer: RepoWriter runs every call on one thread of its own, so network
// coroutines never block on compression, hashing or pack uploads. ContentSink
// cuts one item's bytes into content-defined chunks as they arrive (bounded
// memory whatever the size) and hashes the whole.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <string>
#include <vector>

#include "m365vault/storage/crypto.hpp"
#include "m365vault/storage/repository.hpp"

namespace m365vault::backup {

class RepoWriter {
 public:
  explicit RepoWriter(storage::Repository& repo) : repo_(repo), thread_(1) {}
  ~RepoWriter() { thread_.join(); }

  storage::Repository& repo() { return repo_; }

  // Queues a blob (durable after the next flush). Returns its id.
  boost::asio::awaitable<storage::BlobId> add(std::string bytes);
  // Every blob added so far is durable in the store and indexed when this returns.
  boost::asio::awaitable<void> flush();

 private:
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F>> run(F f) {
    using R = std::invoke_result_t<F>;
    // A named operation, not a temporary in the co_await: GCC 12 (see pg.hpp).
    auto op = boost::asio::co_spawn(
        thread_, [f = std::move(f)]() mutable -> boost::asio::awaitable<R> { co_return f(); },
        boost::asio::use_awaitable);
    co_return co_await std::move(op);
  }

  storage::Repository& repo_;
  boost::asio::thread_pool thread_;
};

// One item's content as stored.
struct StoredContent {
  std::vector<std::string> blobs;  // raw 32-byte ids, in order
  std::string sha256;              // raw 32 bytes
  long long size = 0;
};

class ContentSink {
 public:
  explicit ContentSink(RepoWriter& writer) : writer_(writer) {}
  // Takes the next bytes; stores every chunk that is complete.
  boost::asio::awaitable<void> write(std::string_view data);
  // Stores the rest and returns the whole. Once.
  boost::asio::awaitable<StoredContent> finish();
  // Forgets everything (a download restarted from the beginning). Chunks already
  // stored stay in the repository; dedupe makes the retry cost nothing more.
  void reset();
  long long size() const { return size_; }

 private:
  boost::asio::awaitable<void> cut(bool eof);

  RepoWriter& writer_;
  std::string buf_;
  std::vector<std::string> blobs_;
  std::unique_ptr<storage::crypto::Sha256> sha_ = std::make_unique<storage::crypto::Sha256>();
  long long size_ = 0;
};

}  // namespace m365vault::backup
