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

#include <functional>
#include <mutex>
#include <optional>
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

  // Queues blobs in one hand-off to the writer thread (ids hashed on two threads
  // when large); durable after the next flush. Returns their ids in order.
  boost::asio::awaitable<std::vector<storage::BlobId>> add_all(std::vector<std::string> blobs);
  // Every blob added so far is durable in the store and indexed when this returns.
  boost::asio::awaitable<void> flush();

  // Chunk buffers of finished downloads, handed to the next ones: a buffer's pages
  // are faulted in once per run rather than once per file (buffers this large are
  // mmapped, see daemon/src/main.cpp). A sink takes one only when its buffer
  // would grow past 1 MiB, and holds one at most, so the run never holds more
  // buffers than downloads in flight at once. Thread-safe. take_buffer returns a
  // spare with room for `bytes`, emptied, or an empty string when there is none.
  std::string take_buffer(std::size_t bytes);
  void give_buffer(std::string buffer);

  // Runs f() on the writer thread (which alone may call the repository's writing
  // methods) and returns its result. What f captures by reference must outlive
  // the co_await, and nothing else may touch it meanwhile.
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F>> run(F f) {
    using R = std::invoke_result_t<F>;
    // A named operation, not a temporary in the co_await: GCC 12 (see pg.hpp).
    auto op = boost::asio::co_spawn(
        thread_, [f = std::move(f)]() mutable -> boost::asio::awaitable<R> { co_return f(); },
        boost::asio::use_awaitable);
    co_return co_await std::move(op);
  }

 private:
  storage::Repository& repo_;
  boost::asio::thread_pool thread_;
  static constexpr std::size_t kMaxSpares = 16;  // a backstop: see take_buffer
  std::mutex spare_mu_;
  std::vector<std::string> spare_;
};

// Small blobs of many items (a page of messages) handed to the writer thread
// together: one thread hop per batch rather than one per item, which cost more
// CPU than the writer's own work for a mailbox of small messages. Bounded: once
// `max_bytes` wait, add() hands them over at once. Not thread-safe (one strand).
class BlobBatch {
 public:
  explicit BlobBatch(RepoWriter& writer, std::size_t max_bytes = 4u << 20) : writer_(writer), max_bytes_(max_bytes) {}
  // Takes a blob; returns its slot, whose id is known after the next submit().
  boost::asio::awaitable<std::size_t> add(std::string bytes);
  // Hands every waiting blob to the repository (durable after the writer's next flush).
  boost::asio::awaitable<void> submit();
  // The raw 32-byte id of a submitted slot.
  const std::string& id(std::size_t slot) const { return ids_.at(slot); }

 private:
  RepoWriter& writer_;
  std::size_t max_bytes_;
  std::vector<std::string> waiting_;
  std::size_t waiting_bytes_ = 0;
  std::vector<std::string> ids_;  // by slot; "" until submitted
};

// One item's content as stored.
struct StoredContent {
  std::vector<std::string> blobs;  // raw 32-byte ids, in order
  std::string sha256;              // raw 32 bytes
  long long size = 0;
  // Set when the content is one small blob given to a BlobBatch: its slot there.
  // `blobs` is then empty until the caller takes the id after the batch's submit().
  std::optional<std::size_t> batch_slot;
};

class ContentSink {
 public:
  // With a batch, content no larger than the chunker's minimum chunk (one blob
  // whatever the chunker, so the ids are the same either way) goes into it.
  explicit ContentSink(RepoWriter& writer, BlobBatch* batch = nullptr) : writer_(writer), batch_(batch) {}
  ~ContentSink();
  ContentSink(const ContentSink&) = delete;
  ContentSink& operator=(const ContentSink&) = delete;
  // Another reader of every byte, in order, beside the sink's SHA-256 (a download's
  // quickXorHash). Like the SHA-256 and the chunk cuts, it runs off the calling
  // thread, on the writer's side of the hop that carries the buffer there, and
  // only at cuts and finish(): it has seen every byte once finish() returns.
  // Bytes forgotten by reset() are never given to it.
  void also_hash(std::function<void(std::string_view)> f) { also_ = std::move(f); }
  // Takes the next bytes; stores every chunk that is complete.
  boost::asio::awaitable<void> write(std::string_view data);
  // Stores the rest and returns the whole. Once.
  boost::asio::awaitable<StoredContent> finish();
  // The content's announced size (Content-Length): room for it, up to the bytes the
  // sink buffers before a cut (the largest chunk plus the cut margin, content.cpp's
  // cut_at), is taken at once rather than grown (and copied) as the bytes arrive.
  void expect(long long size);
  // Forgets everything (a download restarted from the beginning). Chunks already
  // stored stay in the repository; dedupe makes the retry cost nothing more.
  void reset();
  long long size() const { return size_; }

 private:
  boost::asio::awaitable<void> cut(bool eof);
  bool adopt_spare(std::size_t bytes);  // a spare of the writer's with room for `bytes` becomes buf_
  void hash(std::string_view fresh);  // the SHA-256 and also_, in order

  RepoWriter& writer_;
  BlobBatch* batch_;
  std::string buf_;
  std::size_t hashed_ = 0;  // bytes at the front of buf_ already hashed (the undecided rest of a cut)
  std::function<void(std::string_view)> also_;
  std::vector<std::string> blobs_;
  std::unique_ptr<storage::crypto::Sha256> sha_ = std::make_unique<storage::crypto::Sha256>();
  long long size_ = 0;
};

}  // namespace m365vault::backup
