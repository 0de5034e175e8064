#include "content.hpp"

namespace m365vault::backup {

namespace asio = boost::asio;

asio::awaitable<storage::BlobId> RepoWriter::add(std::string bytes) {
  // Named, not a temporary inside co_await (GCC 12 destroys those twice).
  auto add = [this, b = std::move(bytes)] { return repo_.add_blob(storage::BlobType::data, b); };
  co_return co_await run(std::move(add));
}

asio::awaitable<void> RepoWriter::flush() {
  auto flush = [this] { repo_.flush(); };
  co_await run(std::move(flush));
}

asio::awaitable<void> ContentSink::write(std::string_view data) {
  sha_->update(data);
  size_ += static_cast<long long>(data.size());
  buf_.append(data);
  if (buf_.size() >= writer_.repo().chunker().params().max_size) co_await cut(false);
}

asio::awaitable<void> ContentSink::cut(bool eof) {
  const auto& chunker = writer_.repo().chunker();
  std::size_t pos = 0;
  while (pos < buf_.size()) {
    auto n = chunker.next_cut(std::string_view(buf_).substr(pos), eof);
    if (n == 0) break;
    std::string chunk = buf_.substr(pos, n);
    auto id = co_await writer_.add(std::move(chunk));
    blobs_.emplace_back(id.view());
    pos += n;
  }
  buf_.erase(0, pos);
}

asio::awaitable<StoredContent> ContentSink::finish() {
  co_await cut(true);
  StoredContent out;
  out.blobs = std::move(blobs_);
  auto d = sha_->finish();
  out.sha256.assign(reinterpret_cast<const char*>(d.data()), d.size());
  out.size = size_;
  co_return out;
}

void ContentSink::reset() {
  buf_.clear();
  blobs_.clear();
  sha_ = std::make_unique<storage::crypto::Sha256>();
  size_ = 0;
}

}  // namespace m365vault::backup
