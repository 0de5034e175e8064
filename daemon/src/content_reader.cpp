#include "content_reader.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "m365vault/core/error.hpp"

namespace m365vault::daemon {

namespace asio = boost::asio;

asio::awaitable<void> RepositoryContentReader::read(const std::vector<std::string>& blob_ids, std::uint64_t offset,
                                                    std::uint64_t length, net::BodySink& sink) {
  std::uint64_t pos = 0;  // where the current blob starts in the content
  const std::uint64_t end = offset + length;
  for (const auto& raw : blob_ids) {
    if (pos >= end) break;
    if (raw.size() != 32) throw Error(Errc::data_corrupt, "content names a malformed blob id");
    storage::BlobId id;
    std::memcpy(id.bytes.data(), raw.data(), 32);
    // A named operation, not a temporary inside co_await (GCC 12, see pg.hpp).
    auto op = asio::co_spawn(
        pool_, [this, id]() -> asio::awaitable<std::string> { co_return repo_.read_blob(id); }, asio::use_awaitable);
    std::string blob = co_await std::move(op);
    const std::uint64_t b_end = pos + blob.size();
    if (b_end > offset) {
      const std::uint64_t from = offset > pos ? offset - pos : 0;
      const std::uint64_t to = std::min<std::uint64_t>(blob.size(), end - pos);
      co_await sink.write(std::string_view(blob).substr(from, to - from));
    }
    pos = b_end;
  }
  if (pos < end) throw Error(Errc::data_corrupt, "content is shorter than its recorded size");
}

asio::awaitable<void> RepositoryContentReader::read(const storage::ItemVersion& v, net::BodySink& sink) {
  const auto size = static_cast<std::uint64_t>(v.content_size.value_or(0));
  co_await read(v.content_blobs, 0, size, sink);
}

}  // namespace m365vault::daemon
