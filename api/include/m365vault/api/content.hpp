#pragma once
// Item content downloads: GET /api/v1/items/{id}/content. The bytes live in the
// repository as an ordered list of blobs; the daemon wires a ContentReader backed
// by the Repository. The HTTP semantics (single byte ranges, ETag and
// If-None-Match / If-Range, Content-Type and Content-Disposition) are here, free of
// the database, so they are tested with a fake reader.
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "m365vault/net/http.hpp"
#include "m365vault/storage/catalog.hpp"

namespace m365vault::api {

class ContentReader {
 public:
  virtual ~ContentReader() = default;
  // Writes `length` bytes starting at `offset` of the concatenated plaintext of
  // `blob_ids` (raw 32-byte ids, in order) to `sink`. Throws Error (Errc::storage,
  // Errc::data_corrupt, Errc::not_found for a blob the repository lacks).
  // Called from the connection's coroutine; may be invoked concurrently.
  virtual boost::asio::awaitable<void> read(const std::vector<std::string>& blob_ids, std::uint64_t offset,
                                            std::uint64_t length, net::BodySink& sink) = 0;
};

struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
};

// A `Range` header against content of `total` bytes: nullopt when absent, not a
// bytes range, or several ranges (the whole content is then sent, as RFC 9110
// allows); throws Error(Errc::range_not_satisfiable) when it lies outside.
std::optional<ByteRange> parse_range(const std::optional<std::string_view>& header, std::uint64_t total);

// `"<sha256 hex>"`, or `"v<version id>"` for content stored without a hash.
std::string content_etag(const storage::ItemVersion& v);
// The stored content type, else one implied by the item kind or file name.
std::string content_type_of(const storage::ItemVersion& v);
// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded`, from the item's
// name (with .eml / .json / .vcf / .ics added where the kind implies one).
std::string content_disposition(const storage::ItemVersion& v);

// The response for a version's content, honouring Range, If-None-Match and
// If-Range. Throws Error(Errc::not_found) when the version has no content.
net::Response content_response(const net::Request& req, const storage::ItemVersion& v, ContentReader& reader);

}  // namespace m365vault::api
