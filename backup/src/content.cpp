#include "content.hpp"

#include <algorithm>

namespace m365vault::backup {

namespace asio = boost::asio;

asio::awaitable<std::vector<storage::BlobId>> RepoWriter::add_all(std::vector<std::string> blobs) {
  auto add = [this, b = std::move(blobs)] {
    std::vector<std::string_view> views(b.begin(), b.end());
    return repo_.add_blobs(storage::BlobType::data, views);
  };
  co_return co_await run(std::move(add));
}

asio::awaitable<std::pair<std::vector<storage::BlobId>, std::string>> RepoWriter::add_pieces(
    std::string buffer, std::vector<std::pair<std::size_t, std::size_t>> pieces) {
  auto add = [this, b = std::move(buffer), p = std::move(pieces)]() mutable {
    std::vector<std::string_view> views;
    views.reserve(p.size());
    for (auto [at, n] : p) views.push_back(std::string_view(b).substr(at, n));
    auto ids = repo_.add_blobs(storage::BlobType::data, views);
    return std::pair(std::move(ids), std::move(b));
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
}  // namespace

asio::awaitable<void> ContentSink::write(std::string_view data) {
  sha_->update(data);
  size_ += static_cast<long long>(data.size());
  const std::size_t full = cut_at(writer_.repo().chunker().params().max_size);
  // Near a cut the buffer is sized once to what it can hold before the cut:
  // doubling there would take twice the memory each download in flight holds.
  // Below that it grows as usual, so a small message never holds max_size.
  const std::size_t need = buf_.size() + data.size();
  if (need > buf_.capacity() && need > full / 2) buf_.reserve(full + data.size());
  buf_.append(data);
  if (buf_.size() >= full) co_await cut(false);
}

asio::awaitable<void> ContentSink::cut(bool eof) {
  const auto& chunker = writer_.repo().chunker();
  // Every chunk decided now, handed to the writer in one hop with the buffer
  // itself (their ids are hashed on two threads there).
  std::vector<std::pair<std::size_t, std::size_t>> chunks;
  std::size_t pos = 0;
  while (pos < buf_.size()) {
    auto n = chunker.next_cut(std::string_view(buf_).substr(pos), eof);
    if (n == 0) break;
    chunks.emplace_back(pos, n);
    pos += n;
  }
  if (chunks.empty()) co_return;
  auto [ids, buffer] = co_await writer_.add_pieces(std::move(buf_), std::move(chunks));
  buf_ = std::move(buffer);
  buf_.erase(0, pos);
  for (auto& id : ids) blobs_.emplace_back(id.view());
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
  const auto most = cut_at(writer_.repo().chunker().params().max_size);
  if (size > 0) buf_.reserve(std::min(static_cast<std::size_t>(size), most));
}

void ContentSink::reset() {
  buf_.clear();
  blobs_.clear();
  sha_ = std::make_unique<storage::crypto::Sha256>();
  size_ = 0;
}

}  // namespace m365vault::backup
