#pragma once
// Reads a stored RFC 5322 message far enough to rebuild it through Graph's JSON
// route: the body (HTML preferred, else text), the attachments with their names,
// types, inline flag and Content-ID (inline images stay referenced by cid:).
// Parsed by GMime, as the backup's scanner reads names: transfer encodings,
// charsets, RFC 2047 words and RFC 2231 parameters are its. Tolerant: a part it
// cannot read, or damage the parser reports, is listed in `problems`, not fatal.
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
  std::vector<std::string> problems;  // parts skipped or damaged, and why
};

// Thread-safe (GMime is initialised once).
MimeMessage parse_mime(std::string_view raw);

}  // namespace m365vault::restore
