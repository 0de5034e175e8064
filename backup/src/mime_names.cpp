#include "m365vault/backup/mime_names.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>

namespace m365vault::backup {

namespace {

// Bounds: a header block (References: lines can be long), a body line worth
// looking at (a boundary line is at most 70 + 4 characters and some blanks), and
// what one message may add to its metadata.
constexpr std::size_t kMaxHeaderBlock = 64u << 10;
constexpr std::size_t kMaxBodyLine = 1024;
constexpr std::size_t kMaxNames = 256;
constexpr std::size_t kMaxNameBytes = 1024;

void gmime_init() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

struct GFree {
  void operator()(char* p) const { g_free(p); }
};
struct GUnref {
  void operator()(void* p) const { g_object_unref(p); }
};
using GString_ = std::unique_ptr<char, GFree>;
using ContentType = std::unique_ptr<GMimeContentType, GUnref>;
using Disposition = std::unique_ptr<GMimeContentDisposition, GUnref>;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return g_ascii_tolower(x) == g_ascii_tolower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A decoded name as valid UTF-8 (JSON and PostgreSQL need it), bounded, or "".
std::string clean(const char* s) {
  if (!s) return {};
  std::string v(trim(s));
  if (v.size() > kMaxNameBytes) v.resize(kMaxNameBytes);  // may cut a character: repaired below
  if (!g_utf8_validate(v.data(), static_cast<gssize>(v.size()), nullptr)) {
    GString_ fixed(g_utf8_make_valid(v.data(), static_cast<gssize>(v.size())));
    v = fixed.get();
  }
  return v;
}

// The unfolded values of the fields named in a header block.
struct Fields {
  std::optional<std::string> content_type, disposition, subject;
};

Fields parse_fields(std::string_view block) {
  Fields f;
  std::optional<std::string>* current = nullptr;
  while (!block.empty()) {
    auto nl = block.find('\n');
    std::string_view l = block.substr(0, nl);
    block.remove_prefix(nl == std::string_view::npos ? block.size() : nl + 1);
    if (l.empty()) continue;
    if (l.front() == ' ' || l.front() == '\t') {  // a folded continuation
      if (current && *current) (*current)->append(" ").append(trim(l));
      continue;
    }
    current = nullptr;
    auto colon = l.find(':');
    if (colon == std::string_view::npos) continue;
    auto name = trim(l.substr(0, colon));
    if (iequals(name, "content-type")) current = &f.content_type;
    else if (iequals(name, "content-disposition")) current = &f.disposition;
    else if (iequals(name, "subject")) current = &f.subject;
    if (current && !*current) *current = std::string(trim(l.substr(colon + 1)));
    else current = nullptr;  // the first occurrence counts
  }
  return f;
}

}  // namespace

void MimeNameScanner::feed(std::string_view data) {
  while (!data.empty()) {
    const void* nlp = std::memchr(data.data(), '\n', data.size());
    if (!nlp) {
      if (!overlong_) {
        partial_.append(data);
        if (partial_.size() > (in_headers_ ? kMaxHeaderBlock : kMaxBodyLine)) {
          overlong_ = true;
          partial_.clear();
        }
      }
      return;
    }
    auto nl = static_cast<std::size_t>(static_cast<const char*>(nlp) - data.data());
    std::string_view piece = data.substr(0, nl);
    data.remove_prefix(nl + 1);
    if (overlong_) {  // the end of a line too long to matter
      overlong_ = false;
      continue;
    }
    if (!piece.empty() && piece.back() == '\r') piece.remove_suffix(1);
    if (partial_.empty()) {
      line(piece);
    } else {
      partial_.append(piece);
      if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
      line(partial_);
      partial_.clear();
    }
  }
}

void MimeNameScanner::line(std::string_view l) {
  if (l.size() >= 2 && l[0] == '-' && l[1] == '-') {
    // The innermost boundary that matches: a delimiter closes the parts nested in it.
    for (std::size_t i = boundaries_.size(); i-- > 0;) {
      const auto& m = boundaries_[i].marker;
      if (l.size() < m.size() || l.compare(0, m.size(), m) != 0) continue;
      auto rest = trim(l.substr(m.size()));
      bool close = rest == "--";
      if (!close && !rest.empty()) continue;
      depth_ = boundaries_[i].depth;
      boundaries_.resize(close ? i : i + 1);
      headers_.clear();
      in_headers_ = !close;
      top_ = embedded_ = embedded_unnamed_ = false;
      return;
    }
  }
  if (!in_headers_) return;
  if (l.empty()) {
    end_of_headers();
    return;
  }
  if (headers_.size() + l.size() < kMaxHeaderBlock) headers_.append(l).push_back('\n');
}

void MimeNameScanner::end_of_headers() {
  in_headers_ = false;
  gmime_init();
  auto f = parse_fields(headers_);
  headers_.clear();
  auto add = [&](std::string name) {
    if (!name.empty() && names_.size() < kMaxNames) names_.push_back(std::move(name));
  };

  if (embedded_) {
    // An attached message's own header block: its Subject names it, when its part did not.
    if (embedded_unnamed_ && f.subject) {
      GString_ s(g_mime_utils_header_decode_text(nullptr, f.subject->c_str()));
      add(clean(s.get()));
    }
    embedded_unnamed_ = false;
  }
  embedded_ = false;

  ContentType ct;
  if (f.content_type) ct.reset(g_mime_content_type_parse(nullptr, f.content_type->c_str()));
  Disposition disp;
  if (f.disposition) disp.reset(g_mime_content_disposition_parse(nullptr, f.disposition->c_str()));
  const bool top = top_;
  top_ = false;

  if (ct && g_mime_content_type_is_type(ct.get(), "multipart", "*")) {
    if (const char* b = g_mime_content_type_get_parameter(ct.get(), "boundary"); b && *b)
      boundaries_.push_back({std::string("--") + b, depth_});
    return;
  }
  if (depth_ > 0) return;  // a part of an attached message: that message's, not ours
  std::string name;
  if (disp) name = clean(g_mime_content_disposition_get_parameter(disp.get(), "filename"));
  if (name.empty() && ct) name = clean(g_mime_content_type_get_parameter(ct.get(), "name"));
  const bool message = !top && ct && g_mime_content_type_is_type(ct.get(), "message", "rfc822");
  if (message) {
    // The body is a whole message, its header block first; what it contains is its own.
    in_headers_ = embedded_ = true;
    embedded_unnamed_ = name.empty();
    depth_ = 1;
  }
  add(std::move(name));
}

std::vector<std::string> MimeNameScanner::finish() {
  if (!overlong_ && !partial_.empty()) {
    std::string last = std::move(partial_);
    if (!last.empty() && last.back() == '\r') last.pop_back();
    line(last);
  }
  partial_.clear();
  if (in_headers_ && !headers_.empty()) end_of_headers();  // a part that ends in its header block
  std::vector<std::string> out;
  for (auto& n : names_)
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(std::move(n));
  names_.clear();
  return out;
}

}  // namespace m365vault::backup
