#pragma once
// Attachment names of a MIME message, read from the bytes as they stream past
// (the `$value` download we store anyway): no extra Graph request, and memory
// bounded by one header block whatever the message size.
//
// A name is a part's Content-Disposition `filename`, else its Content-Type
// `name` (RFC 2231 continuations and charsets, RFC 2047 encoded words: GMime
// decodes them), or, for an attached message (message/rfc822) without one, its
// Subject, as Outlook names item attachments. Parts inside an attached message
// belong to that message, not to this one, and are not listed.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace m365vault::backup {

class MimeNameScanner {
 public:
  // Takes the next bytes of the message.
  void feed(std::string_view data);
  // The names found, in order, duplicates removed. Call after the last feed().
  std::vector<std::string> finish();
  // Forgets everything (a download restarted from the beginning).
  void reset() { *this = MimeNameScanner(); }

 private:
  struct Boundary {
    std::string marker;  // "--" + boundary
    int depth;           // attached-message depth the multipart lives at
  };
  void line(std::string_view l);
  void end_of_headers();

  std::string partial_;      // an incomplete line carried to the next feed()
  bool overlong_ = false;    // the current line is past any boundary's length: skipped
  bool in_headers_ = true;   // the top-level header block comes first
  bool top_ = true;          // the header block is the message's own
  bool embedded_ = false;    // the header block is an attached message's own
  int depth_ = 0;            // attached-message depth of the current part
  bool embedded_unnamed_ = false;  // the attached message's part had no name: take its Subject
  std::string headers_;      // the header block being read (bounded)
  std::vector<Boundary> boundaries_;
  std::vector<std::string> names_;
};

}  // namespace m365vault::backup
