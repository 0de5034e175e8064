#include "content.hpp"

#include <algorithm>
#include <future>

namespace m365vault::backup {

namespace asio = boost::asio;

asio::awaitable<std::vector<storage::BlobId>> RepoWriter::add_all(std::vector<std::string> blobs) {
  auto add = [this, b = std::move(blobs)] {
    std::vector<std::string_view> views(b.begin(), b.end());
    return repo_.add_blobs(storage::BlobType::data, views);
  };
  co_return co_await run(std::move(add));
}

asio::awaitable<void> RepoWriter::flush() {
  auto flush = [this] { repo_.flush(); };
  co_await run(std::move(flush));
}

namespace {
// Bytes buffered beyond the chunker's max_size before cutting: each cut then
// decides every chunk that starts in them at once, and moves the undecided rest
// (under max_size) to the front once. Cutting as soon as max_size was buffered
// decided one chunk per cut and moved the other max_size bytes every time (7
// bytes moved per byte stored with 8 MiB chunks).
std::size_t cut_at(std::size_t max) { return max + std::min<std::size_t>(max, 4u << 20); }
// Room past the cut for the write that reaches it: the network client reads bodies
// in 256 KiB pieces. One size for every sink's buffer, so any spare fits any sink.
constexpr std::size_t kWriteRoom = 256u << 10;
// Every buffer that reaches a cut: what a spare must hold.
std::size_t cut_buffer(std::size_t max) { return cut_at(max) + kWriteRoom; }
// Where a new buffer is a fresh mapping (daemon/src/main.cpp's mmap threshold).
constexpr std::size_t kSpareFrom = 1u << 20;
}  // namespace

std::string RepoWriter::take_buffer(std::size_t bytes) {
  std::lock_guard lock(spare_mu_);
  for (std::size_t i = 0; i < spare_.size(); ++i) {
    if (spare_[i].capacity() < bytes) continue;
    std::string out = std::move(spare_[i]);
    std::swap(spare_[i], spare_.back());
    spare_.pop_back();
    out.clear();
    return out;
  }
  return {};
}

void RepoWriter::give_buffer(std::string buffer) {
  std::lock_guard lock(spare_mu_);
  if (spare_.size() < kMaxSpares) spare_.push_back(std::move(buffer));
}

asio::awaitable<void> ContentSink::write(std::string_view data) {
  size_ += static_cast<long long>(data.size());
  const std::size_t full = cut_at(writer_.repo().chunker().params().max_size);
  const std::size_t need = buf_.size() + data.size();
  if (need > buf_.capacity()) {
    // From 1 MiB on a spare of the run's (its pages already faulted in) rather
    // than a fresh mapping. Else, near a cut the buffer is sized once to what it
    // can hold before the cut: doubling there would take twice the memory each
    // download in flight holds. Below that it grows as usual, so a small message
    // never holds max_size.
    const std::size_t cut_room = std::max(cut_buffer(writer_.repo().chunker().params().max_size), full + data.size());
    if (!(need >= kSpareFrom && adopt_spare(cut_room)) && need > full / 2) buf_.reserve(cut_room);
  }
  buf_.append(data);
  if (buf_.size() >= full) co_await cut(false);
}

bool ContentSink::adopt_spare(std::size_t bytes) {
  auto spare = writer_.take_buffer(bytes);
  if (spare.capacity() < bytes) return false;
  spare.append(buf_);
  buf_.swap(spare);
  return true;
}

ContentSink::~ContentSink() {
  // Only buffers sized for a cut: a spare that fits no sink would be held for nothing.
  if (buf_.capacity() >= cut_buffer(writer_.repo().chunker().params().max_size))
    writer_.give_buffer(std::move(buf_));
}

void ContentSink::hash(std::string_view fresh) {
  sha_->update(fresh);
  if (also_) also_(fresh);
}

asio::awaitable<void> ContentSink::cut(bool eof) {
  // Every per-byte pass runs on the writer's side, in the one hop that carries the
  // buffer there and back: the hashes of the bytes new since the last cut (on a
  // thread of their own when there are many, beside the cuts and the blob ids),
  // the chunk cuts, and the blobs of every chunk decided. The calling thread (the
  // network's) only appends. This coroutine waits for the hop, so the sink's
  // members are touched by one thread at a time.
  if (buf_.empty()) co_return;
  struct Cut {
    std::vector<storage::BlobId> ids;
    std::string buffer;
    std::size_t pos = 0;  // bytes decided (stored)
  };
  auto job = [this, b = std::move(buf_), fresh = hashed_, eof]() mutable {
    Cut out;
    const std::string_view all(b);
    const std::string_view unhashed = all.substr(fresh);  // bytes the hashes have not seen
    std::future<void> hashing;
    if (unhashed.size() >= (1u << 20)) {
      auto hash_rest = [this, unhashed] { hash(unhashed); };
      hashing = std::async(std::launch::async, hash_rest);
    } else {
      hash(unhashed);
    }
    std::vector<std::string_view> chunks;
    const auto& chunker = writer_.repo().chunker();
    while (out.pos < all.size()) {
      auto n = chunker.next_cut(all.substr(out.pos), eof);
      if (n == 0) break;
      chunks.push_back(all.substr(out.pos, n));
      out.pos += n;
    }
    if (!chunks.empty()) out.ids = writer_.repo().add_blobs(storage::BlobType::data, chunks);
    if (hashing.valid()) hashing.get();
    out.buffer = std::move(b);
    return out;
  };
  auto done = co_await writer_.run(std::move(job));
  buf_ = std::move(done.buffer);
  buf_.erase(0, done.pos);
  hashed_ = buf_.size();
  for (auto& id : done.ids) blobs_.emplace_back(id.view());
}

asio::awaitable<std::size_t> BlobBatch::add(std::string bytes) {
  std::size_t slot = ids_.size();
  ids_.emplace_back();
  waiting_bytes_ += bytes.size();
  waiting_.push_back(std::move(bytes));
  if (waiting_bytes_ >= max_bytes_) co_await submit();
  co_return slot;
}

asio::awaitable<void> BlobBatch::submit() {
  if (waiting_.empty()) co_return;
  // Taken out before the hop: other items of the page keep adding meanwhile.
  auto blobs = std::move(waiting_);
  waiting_.clear();
  waiting_bytes_ = 0;
  const std::size_t first = ids_.size() - blobs.size();
  auto ids = co_await writer_.add_all(std::move(blobs));
  for (std::size_t i = 0; i < ids.size(); ++i) ids_[first + i].assign(ids[i].view());
}

asio::awaitable<StoredContent> ContentSink::finish() {
  StoredContent out;
  if (batch_ && blobs_.empty() && !buf_.empty() && buf_.size() <= writer_.repo().chunker().params().min_size) {
    hash(std::string_view(buf_).substr(hashed_));  // small: here, no hop of its own
    out.batch_slot = co_await batch_->add(std::move(buf_));
    buf_.clear();
  } else {
    co_await cut(true);
  }
  out.blobs = std::move(blobs_);
  auto d = sha_->finish();
  out.sha256.assign(reinterpret_cast<const char*>(d.data()), d.size());
  out.size = size_;
  co_return out;
}

void ContentSink::expect(long long size) {
  if (size <= 0) return;
  const auto max = writer_.repo().chunker().params().max_size;
  const auto n = static_cast<std::size_t>(size);
  // A spare when there is one (the size write() gives every buffer that reaches a cut).
  if (n >= kSpareFrom && adopt_spare(cut_buffer(max))) return;
  buf_.reserve(std::min(n, cut_at(max)));
}

void ContentSink::reset() {
  buf_.clear();
  hashed_ = 0;
  blobs_.clear();
  sha_ = std::make_unique<storage::crypto::Sha256>();
  size_ = 0;
}

}  // namespace m365vault::backup
