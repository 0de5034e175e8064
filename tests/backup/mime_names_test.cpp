// Attachment names from MIME as Exchange serves it: RFC 2231 file names (with
// continuations and charsets), RFC 2047 encoded words in `name`, attached
// messages named by their Subject (their own parts not listed), inline parts,
// and the same result whatever pieces the bytes arrive in.
#include <catch2/catch.hpp>

#include "m365vault/backup/mime_names.hpp"

using m365vault::backup::MimeNameScanner;

namespace {

const char* kMessage =
    "From: \"A\" <a@example.com>\r\n"
    "Subject: outer\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed;\r\n\tboundary=\"_004_mixed_\"\r\n"
    "\r\n"
    "--_004_mixed_\r\n"
    "Content-Type: multipart/related;\r\n\tboundary=\"_005_rel_\";\r\n\ttype=\"multipart/alternative\"\r\n"
    "\r\n"
    "--_005_rel_\r\n"
    "Content-Type: text/plain; charset=\"utf-8\"\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "--_004_mixed is not a boundary, nor is this line: --_005_rel_ x\r\n"
    "\r\n"
    "--_005_rel_\r\n"
    "Content-Type: image/png; name=\"image001.png\"\r\n"
    "Content-Disposition: inline;\r\n\tfilename=\"image001.png\"; size=4\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "iVBORw==\r\n"
    "\r\n"
    "--_005_rel_--\r\n"
    "\r\n"
    "--_004_mixed_\r\n"
    "Content-Type: application/pdf; name=\"=?utf-8?B?R3LDtsOfZSBCZXJpY2h0LnBkZg==?=\"\r\n"
    "Content-Disposition: attachment;\r\n\tfilename*=utf-8''Gr%C3%B6%C3%9Fe%20Bericht.pdf; size=3\r\n"
    "\r\n"
    "JVBE\r\n"
    "\r\n"
    "--_004_mixed_\r\n"
    "Content-Type: application/vnd.ms-excel;\r\n\tname=\"=?iso-8859-1?Q?Umsatz_M=E4rz.xls?=\"\r\n"
    "Content-Disposition: attachment\r\n"
    "\r\n"
    "UEs=\r\n"
    "\r\n"
    "--_004_mixed_\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Disposition: attachment;\r\n"
    " filename*0*=utf-8''quarterly%20;\r\n"
    " filename*1=\"plan final.txt\"\r\n"
    "\r\n"
    "plan\r\n"
    "\r\n"
    "--_004_mixed_\r\n"
    "Content-Type: message/rfc822\r\n"
    "Content-Disposition: attachment\r\n"
    "\r\n"
    "From: b@example.com\r\n"
    "Subject: =?utf-8?Q?Fwd:_Reisekosten_M=C3=BCnchen?=\r\n"
    "Content-Type: multipart/mixed; boundary=inner\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "see attached\r\n"
    "--inner\r\n"
    "Content-Type: application/zip; name=\"inside-the-forward.zip\"\r\n"
    "Content-Disposition: attachment; filename=\"inside-the-forward.zip\"\r\n"
    "\r\n"
    "UEsDBA==\r\n"
    "--inner--\r\n"
    "\r\n"
    "--_004_mixed_\r\n"
    "Content-Type: application/octet-stream; name=\"after-the-forward.bin\"\r\n"
    "Content-Disposition: attachment; filename=\"after-the-forward.bin\"\r\n"
    "\r\n"
    "AAAA\r\n"
    "--_004_mixed_--\r\n";

const std::vector<std::string> kNames = {"image001.png",         "Größe Bericht.pdf",
                                         "Umsatz März.xls",      "quarterly plan final.txt",
                                         "Fwd: Reisekosten München", "after-the-forward.bin"};

std::vector<std::string> scan(std::string_view mime, std::size_t piece) {
  MimeNameScanner s;
  for (std::size_t i = 0; i < mime.size(); i += piece) s.feed(mime.substr(i, piece));
  return s.finish();
}

}  // namespace

TEST_CASE("mime names: file names, encoded names and attached messages, in any pieces", "[unit]") {
  for (std::size_t piece : {std::size_t(1), std::size_t(2), std::size_t(7), std::size_t(64), std::size_t(1) << 20}) {
    INFO("pieces of " << piece);
    CHECK(scan(kMessage, piece) == kNames);
  }
}

TEST_CASE("mime names: a message without attachments has none, restarting forgets", "[unit]") {
  const std::string plain =
      "Subject: hello\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n--not a boundary\r\nbody\r\n";
  CHECK(scan(plain, 5).empty());
  MimeNameScanner s;
  s.feed(std::string_view(kMessage).substr(0, 1500));
  s.reset();
  s.feed(plain);
  CHECK(s.finish().empty());
}

TEST_CASE("mime names: LF line ends, long base64 lines and a missing final boundary", "[unit]") {
  std::string mime =
      "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\n"
      "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=data.bin\n\n";
  mime += std::string(100000, 'A');  // one very long line
  mime += "\n--b\nContent-Disposition: attachment; filename=\"last.txt\"\n\nx\n";  // no closing delimiter
  CHECK(scan(mime, 4096) == std::vector<std::string>{"data.bin", "last.txt"});
  // Bytes that are not UTF-8 in a name come out as valid UTF-8, not as an error.
  auto raw = scan("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                  "Content-Disposition: attachment; filename=\"caf\xe9.txt\"\r\n\r\nx\r\n--b--\r\n",
                  3);
  REQUIRE(raw.size() == 1);
  CHECK(raw[0].rfind("caf", 0) == 0);
}
