#include "m365vault/storage/sigv4.hpp"

#include <algorithm>
#include <ctime>
#include <map>

#include "m365vault/storage/crypto.hpp"

namespace m365vault::storage::sigv4 {

namespace {
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Trims and folds runs of whitespace (spaces, tabs, the newlines of an obsolete
// multi-line header) into one space, as the canonical header form requires.
std::string fold_value(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string canonical_path(std::string_view path, bool normalize) {
  if (path.empty()) return "/";
  if (!normalize) return uri_encode(path, true);
  std::vector<std::string_view> segs;
  std::size_t i = 0;
  while (i <= path.size()) {
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    auto seg = path.substr(i, j - i);
    if (seg == "..") {
      if (!segs.empty()) segs.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segs.push_back(seg);
    }
    i = j + 1;
  }
  std::string out;
  for (auto s : segs) out += "/" + uri_encode(s, false);
  bool trailing = path.back() == '/';
  if (out.empty()) return "/";
  if (trailing) out += '/';
  return out;
}
}  // namespace

std::string uri_encode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '_' || c == '.' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string amz_date(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string payload_sha256(std::string_view body) { return crypto::to_hex(crypto::sha256(body)); }

Signature sign(const Request& req, const Credentials& creds, std::string_view region, std::string_view service,
               std::string_view date, bool normalize_path) {
  // Headers: lower-case names, sorted; repeated names join their values with ','
  // in the order sent.
  std::map<std::string, std::string> headers;
  for (auto& [name, value] : req.headers) {
    std::string n;
    for (char c : name) n += lower(c);
    auto [it, fresh] = headers.try_emplace(n, fold_value(value));
    if (!fresh) it->second += "," + fold_value(value);
  }
  std::vector<std::pair<std::string, std::string>> query;
  for (auto& [k, v] : req.query) query.emplace_back(uri_encode(k, false), uri_encode(v, false));
  std::sort(query.begin(), query.end());

  Signature s;
  std::string& c = s.canonical_request;
  c = req.method + "\n" + canonical_path(req.path, normalize_path) + "\n";
  for (std::size_t i = 0; i < query.size(); ++i) c += (i ? "&" : "") + query[i].first + "=" + query[i].second;
  c += "\n";
  for (auto& [n, v] : headers) {
    c += n + ":" + v + "\n";
    s.signed_headers += (s.signed_headers.empty() ? "" : ";") + n;
  }
  c += "\n" + s.signed_headers + "\n" + req.payload_hash;

  std::string day(date.substr(0, 8));
  std::string scope = day + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
  s.string_to_sign = "AWS4-HMAC-SHA256\n" + std::string(date) + "\n" + scope + "\n" + payload_sha256(c);

  auto k = crypto::hmac_sha256("AWS4" + creds.secret_key, day);
  k = crypto::hmac_sha256(crypto::as_view(k), region);
  k = crypto::hmac_sha256(crypto::as_view(k), service);
  k = crypto::hmac_sha256(crypto::as_view(k), "aws4_request");
  s.signature = crypto::to_hex(crypto::hmac_sha256(crypto::as_view(k), s.string_to_sign));
  s.authorization = "AWS4-HMAC-SHA256 Credential=" + creds.access_key + "/" + scope +
                    ", SignedHeaders=" + s.signed_headers + ", Signature=" + s.signature;
  return s;
}

}  // namespace m365vault::storage::sigv4
