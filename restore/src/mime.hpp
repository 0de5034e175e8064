#pragma once
// Reads a stored RFC 5322 message far enough to rebuild it through Graph's JSON
// route: the body (HTML preferred, else text), the attachments with their names,
// types, inline flag and Content-ID (inline images stay referenced by cid:), and
// the threading headers. Tolerant: a part it cannot decode is reported, not fatal.
#include <string>
#include <string_view>
#include <vector>

namespace m365vault::restore {

struct MimeAttachment {
  std::string name;
  std::string content_type;  // lower case, no parameters
  std::string content_id;    // without <>
  bool is_inline = false;
  bool is_message = false;  // message/rfc822: an attached mail item
  std::string bytes;        // decoded
};

struct MimeMessage {
  std::string html, text;  // decoded to UTF-8; either may be empty
  std::vector<MimeAttachment> attachments;
  std::string message_id, in_reply_to, references;
  std::vector<std::string> problems;  // parts skipped, and why
};

MimeMessage parse_mime(std::string_view raw);

// RFC 2047 encoded words ("=?utf-8?B?...?=") decoded; other text unchanged.
std::string decode_words(std::string_view s);

}  // namespace m365vault::restore
