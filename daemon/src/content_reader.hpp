#pragma once
// Item content for the API, read from the repository: blobs are read and
// authenticated on a small thread pool (the Repository is blocking) and written
// to the response as they come, so a download holds about one chunk in memory.
#include <boost/asio/thread_pool.hpp>

#include "m365vault/api/content.hpp"
#include "m365vault/export/zip_export.hpp"
#include "m365vault/storage/repository.hpp"

namespace m365vault::daemon {

class RepositoryContentReader final : public api::ContentReader, public exporting::ContentSource {
 public:
  explicit RepositoryContentReader(storage::Repository& repo, std::size_t threads = 2) : repo_(repo), pool_(threads) {}
  ~RepositoryContentReader() override { pool_.join(); }
  boost::asio::awaitable<void> read(const std::vector<std::string>& blob_ids, std::uint64_t offset,
                                    std::uint64_t length, net::BodySink& sink) override;
  // A version's whole content (exports).
  boost::asio::awaitable<void> read(const storage::ItemVersion& v, net::BodySink& sink) override;

 private:
  storage::Repository& repo_;
  boost::asio::thread_pool pool_;
};

}  // namespace m365vault::daemon
