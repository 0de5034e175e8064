#include "mime.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <mutex>

#include "m365vault/core/text.hpp"

namespace m365vault::restore {

namespace {

struct GUnref {
  void operator()(void* p) const { g_object_unref(p); }
};
struct GFree {
  void operator()(char* p) const { g_free(p); }
};
template <class T>
using GPtr = std::unique_ptr<T, GUnref>;
using GText = std::unique_ptr<char, GFree>;
struct OptionsFree {
  void operator()(GMimeParserOptions* p) const { g_mime_parser_options_free(p); }
};

void gmime_init() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

// Valid UTF-8 (JSON needs it): invalid sequences replaced.
std::string utf8(const char* s, std::size_t n) {
  if (g_utf8_validate(s, static_cast<gssize>(n), nullptr)) return std::string(s, n);
  GText fixed(g_utf8_make_valid(s, static_cast<gssize>(n)));
  return fixed.get();
}
std::string utf8(const char* s) { return s ? utf8(s, std::strlen(s)) : std::string(); }

// What the parser reports that loses or may lose content, in words.
const char* damage(GMimeParserWarning w) {
  switch (w) {
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY: return "a multipart without a boundary (read as one part)";
    case GMIME_WARN_MALFORMED_MULTIPART: return "a multipart without parts";
    case GMIME_WARN_TRUNCATED_MESSAGE: return "the message is truncated";
    case GMIME_WARN_MALFORMED_MESSAGE: return "the message is malformed";
    case GMIME_CRIT_NESTING_OVERFLOW: return "parts nested too deep (the innermost read as they stand)";
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT: return "a part without headers or content";
    case GMIME_CRIT_INVALID_HEADER_NAME: return "an invalid header name";
    default: return nullptr;  // duplicated or 8-bit headers and the like: nothing is lost
  }
}

void on_warning(gint64 offset, GMimeParserWarning code, const gchar* item, gpointer user) {
  auto& problems = *static_cast<std::vector<std::string>*>(user);
  const char* what = damage(code);
  if (!what || problems.size() >= 20) return;
  std::string p = what;
  p += " at byte " + std::to_string(offset);
  if (item && *item) p += " (" + utf8(item).substr(0, 80) + ")";
  if (std::find(problems.begin(), problems.end(), p) == problems.end()) problems.push_back(std::move(p));
}

// A part's content with its transfer encoding undone.
std::string decoded(GMimePart* part) {
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (!content) return {};
  GPtr<GMimeStream> out(g_mime_stream_mem_new());
  g_mime_data_wrapper_write_to_stream(content, out.get());
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out.get()));
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

void walk(GMimeObject* obj, MimeMessage& m) {
  if (GMIME_IS_MULTIPART(obj)) {
    auto* mp = GMIME_MULTIPART(obj);
    for (int i = 0, n = g_mime_multipart_get_count(mp); i < n; ++i) walk(g_mime_multipart_get_part(mp, i), m);
    return;
  }
  const char* disp_c = g_mime_object_get_disposition(obj);
  const std::string disp = disp_c ? ascii_lower(disp_c) : "";
  const std::string cid = utf8(g_mime_object_get_content_id(obj));
  GMimeContentType* ct = g_mime_object_get_content_type(obj);
  GText type_c(ct ? g_mime_content_type_get_mime_type(ct) : nullptr);
  const std::string type = type_c ? ascii_lower(type_c.get()) : "application/octet-stream";

  if (GMIME_IS_MESSAGE_PART(obj)) {
    // An attached mail item, as its own message.
    MimeAttachment a;
    a.content_type = "message/rfc822";
    a.is_message = true;
    a.content_id = cid;
    a.is_inline = disp == "inline";
    const char* name = g_mime_object_get_content_disposition_parameter(obj, "filename");
    if (!name) name = g_mime_object_get_content_type_parameter(obj, "name");
    a.name = name ? utf8(name) : "message.eml";
    if (GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj))) {
      GText text(g_mime_object_to_string(GMIME_OBJECT(inner), nullptr));
      if (text) a.bytes = text.get();
    }
    m.attachments.push_back(std::move(a));
    return;
  }
  if (!GMIME_IS_PART(obj)) {
    m.problems.push_back("a " + type + " part of an unknown kind, skipped");
    return;
  }
  auto* part = GMIME_PART(obj);
  // Decoded from RFC 2231 (filename*=, continuations) or RFC 2047 words, to UTF-8.
  const std::string name = utf8(g_mime_part_get_filename(part));
  const bool body_text = (type == "text/plain" || type == "text/html") && disp != "attachment" && name.empty();
  if (body_text && GMIME_IS_TEXT_PART(obj)) {
    // In UTF-8 whatever its charset (GMime's iconv conversion).
    GText t(g_mime_text_part_get_text(GMIME_TEXT_PART(obj)));
    std::string text = t ? utf8(t.get()) : std::string();
    auto& slot = type == "text/html" ? m.html : m.text;
    if (slot.empty()) slot = std::move(text);
    else m.attachments.push_back({"part.txt", type, cid, disp == "inline", false, std::move(text)});
    return;
  }
  MimeAttachment a;
  a.name = name.empty() ? (cid.empty() ? "attachment" : cid) : name;
  a.content_type = type;
  a.content_id = cid;
  a.is_inline = disp == "inline" || (disp.empty() && !cid.empty());
  a.bytes = decoded(part);
  m.attachments.push_back(std::move(a));
}

}  // namespace

MimeMessage parse_mime(std::string_view raw) {
  gmime_init();
  MimeMessage m;
  std::unique_ptr<GMimeParserOptions, OptionsFree> opts(g_mime_parser_options_new());
  g_mime_parser_options_set_warning_callback(opts.get(), on_warning, &m.problems);
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(raw.data(), raw.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  GPtr<GMimeMessage> msg(g_mime_parser_construct_message(parser.get(), opts.get()));
  GMimeObject* body = msg ? g_mime_message_get_mime_part(msg.get()) : nullptr;
  if (!body) {
    // Nothing MIME could read: the bytes as text, so nothing is lost.
    m.problems.push_back("not a MIME message: its bytes restored as the text body");
    m.text = utf8(raw.data(), raw.size());
    return m;
  }
  walk(body, m);
  return m;
}

}  // namespace m365vault::restore
