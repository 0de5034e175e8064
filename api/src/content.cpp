#include "m365vault/api/content.hpp"

#include <algorithm>
#include <cctype>

#include "m365vault/core/error.hpp"

namespace m365vault::api {

namespace {

std::string hex(std::string_view raw) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char ch : raw) {
    out += kHex[ch >> 4];
    out += kHex[ch & 15];
  }
  return out;
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  return std::stoull(std::string(s));
}

std::string lower_extension(const std::string& name) {
  auto dot = name.rfind('.');
  if (dot == std::string::npos || dot + 1 >= name.size() || name.size() - dot > 8) return "";
  std::string ext = name.substr(dot + 1);
  for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext;
}

// The extension a kind's content implies, when the name does not carry one.
std::string implied_extension(const storage::ItemVersion& v) {
  if (v.kind == "message") return "eml";
  if (v.kind == "contact") return "json";
  if (v.kind == "event") return "json";
  return "";
}

// If-None-Match is `*` or a list of entity tags compared weakly (RFC 9110 13.1.2):
// `W/"x"` matches `"x"`, and a client that cached several versions sends them all.
bool none_match_hits(std::string_view header, const std::string& etag) {
  std::size_t pos = 0;
  while (pos < header.size()) {
    auto comma = header.find(',', pos);
    auto tag = header.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    pos = comma == std::string_view::npos ? header.size() : comma + 1;
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag == "*") return true;
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == etag) return true;
  }
  return false;
}

}  // namespace

std::optional<ByteRange> parse_range(const std::optional<std::string_view>& header, std::uint64_t total) {
  if (!header) return std::nullopt;
  std::string_view h = *header;
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
  if (h.substr(0, 6) != "bytes=") return std::nullopt;
  h.remove_prefix(6);
  if (h.find(',') != std::string_view::npos) return std::nullopt;  // several ranges: send it all
  auto dash = h.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto a = h.substr(0, dash), b = h.substr(dash + 1);
  auto unsatisfiable = [&] {
    return Error(Errc::range_not_satisfiable,
                 "range '" + std::string(*header).substr(0, 64) + "' is outside the content (" + std::to_string(total) +
                     " bytes)");
  };
  if (a.empty()) {  // the last N bytes
    auto n = parse_u64(b);
    if (!n) return std::nullopt;
    if (*n == 0 || total == 0) throw unsatisfiable();
    return ByteRange{total - std::min(*n, total), total - 1};
  }
  auto first = parse_u64(a);
  if (!first) return std::nullopt;
  std::uint64_t last = total == 0 ? 0 : total - 1;
  if (!b.empty()) {
    auto l = parse_u64(b);
    if (!l || *l < *first) return std::nullopt;  // invalid syntax: ignored
    last = std::min(*l, last);
  }
  if (*first >= total) throw unsatisfiable();
  return ByteRange{*first, last};
}

std::string content_etag(const storage::ItemVersion& v) {
  if (v.content_sha256) return "\"" + hex(*v.content_sha256) + "\"";
  return "\"v" + v.version_id + "\"";
}

std::string content_type_of(const storage::ItemVersion& v) {
  if (v.content_type && !v.content_type->empty()) return *v.content_type;
  if (v.kind == "message") return "message/rfc822";
  if (v.kind == "contact" || v.kind == "event") return "application/json";
  static const std::vector<std::pair<std::string, std::string>> kTypes = {
      {"txt", "text/plain; charset=utf-8"},
      {"csv", "text/csv"},
      {"html", "text/html"},
      {"htm", "text/html"},
      {"json", "application/json"},
      {"pdf", "application/pdf"},
      {"zip", "application/zip"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"eml", "message/rfc822"},
      {"ics", "text/calendar"},
      {"vcf", "text/vcard"},
      {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
      {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
      {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
      {"mp4", "video/mp4"}};
  auto ext = lower_extension(v.name);
  for (auto& [e, t] : kTypes)
    if (e == ext) return t;
  return "application/octet-stream";
}

std::string content_disposition(const storage::ItemVersion& v) {
  std::string name = v.name.empty() ? "item-" + v.item_id : v.name;
  auto implied = implied_extension(v);
  if (!implied.empty() && lower_extension(name) != implied) name += "." + implied;
  // The plain filename, for clients that ignore filename*: printable ASCII that
  // Windows accepts in a file name (it refuses \ / : * ? " < > |) and that cannot
  // end the header parameter (";"); anything else, and each non-ASCII character
  // (not each of its UTF-8 bytes), becomes '_'. filename* keeps the exact name.
  static constexpr std::string_view kRefused = "\\/:*?\"<>|;";
  std::string ascii;
  for (unsigned char ch : name) {
    if ((ch & 0xC0) == 0x80) continue;  // a UTF-8 continuation byte: its character is already '_'
    ascii += (ch >= 0x20 && ch < 0x7f && kRefused.find(static_cast<char>(ch)) == std::string_view::npos)
                 ? static_cast<char>(ch)
                 : '_';
  }
  std::string encoded;
  static const char* kHex = "0123456789ABCDEF";
  for (unsigned char ch : name) {
    if (std::isalnum(ch) || ch == '.' || ch == '-' || ch == '_' || ch == '~') {
      encoded += static_cast<char>(ch);
    } else {
      encoded += '%';
      encoded += kHex[ch >> 4];
      encoded += kHex[ch & 15];
    }
  }
  return "attachment; filename=\"" + ascii + "\"; filename*=UTF-8''" + encoded;
}

net::Response content_response(const net::Request& req, const storage::ItemVersion& v, ContentReader& reader) {
  if (v.content_blobs.empty() && v.content_size.value_or(0) > 0)
    throw Error(Errc::not_found, "item '" + v.item_id + "' has no stored content");
  const std::uint64_t total = static_cast<std::uint64_t>(v.content_size.value_or(0));
  const auto etag = content_etag(v);
  net::Response res;
  res.headers.set("ETag", etag);
  res.headers.set("Accept-Ranges", "bytes");
  res.headers.set("Cache-Control", "private, no-store");
  if (auto inm = req.headers.get("If-None-Match"); inm && none_match_hits(*inm, etag)) {
    res.status = 304;
    return res;
  }
  std::optional<ByteRange> range;
  auto if_range = req.headers.get("If-Range");
  if (!if_range || *if_range == etag) range = parse_range(req.headers.get("Range"), total);
  res.headers.set("Content-Type", content_type_of(v));
  res.headers.set("Content-Disposition", content_disposition(v));
  std::uint64_t offset = 0, length = total;
  if (range) {
    res.status = 206;
    offset = range->first;
    length = range->last - range->first + 1;
    res.headers.set("Content-Range", "bytes " + std::to_string(range->first) + "-" + std::to_string(range->last) + "/" +
                                         std::to_string(total));
  } else {
    res.status = 200;
  }
  res.content_length = length;
  if (length == 0) return res;
  auto blobs = v.content_blobs;
  res.stream = [&reader, blobs, offset, length](net::BodySink& sink) -> boost::asio::awaitable<void> {
    co_await reader.read(blobs, offset, length, sink);
  };
  return res;
}

}  // namespace m365vault::api
