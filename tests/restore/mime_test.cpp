// The restore's MIME reading (restore/src/mime.cpp, on GMime) with the odd and
// hostile messages a mailbox holds: nested multiparts, encoded names, legacy
// charsets, missing or unclosed boundaries, attached messages, deep nesting.
#include <catch2/catch.hpp>
#include <glib.h>

#include <string>

#include "mime.hpp"

using namespace m365vault::restore;

namespace {

const MimeAttachment* named(const MimeMessage& m, const std::string& name) {
  for (auto& a : m.attachments)
    if (a.name == name) return &a;
  return nullptr;
}

bool valid_utf8(const std::string& s) { return g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr); }

std::string names(const MimeMessage& m) {
  std::string out;
  for (auto& a : m.attachments) out += "[" + a.name + " " + a.content_type + "]";
  for (auto& p : m.problems) out += " problem: " + p;
  return out;
}

}  // namespace

TEST_CASE("mime: nested multiparts, inline images by Content-ID, RFC 2047 and 2231 names, legacy charsets", "[unit]") {
  const std::string raw =
      "From: A <a@example.com>\r\n"
      "Subject: =?UTF-8?B?w6l0w6k=?=\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
      "\r\n"
      "preamble, not a part\r\n"
      "--outer\r\n"
      "Content-Type: multipart/related; boundary=\"rel\"\r\n"
      "\r\n"
      "--rel\r\n"
      "Content-Type: multipart/alternative; boundary=\"alt\"\r\n"
      "\r\n"
      "--alt\r\n"
      "Content-Type: text/plain; charset=iso-8859-1\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n"
      "\r\n"
      "caf=E9 cr=E8me, a soft =\r\n"
      "break\r\n"
      "--alt\r\n"
      "Content-Type: text/html; charset=windows-1252\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n"
      "\r\n"
      "<p>=80 5, <img src=3D\"cid:logo@x\"></p>\r\n"
      "--alt--\r\n"
      "--rel\r\n"
      "Content-Type: image/png\r\n"
      "Content-ID: <logo@x>\r\n"
      "Content-Transfer-Encoding: base64\r\n"
      "\r\n"
      "iVBORw0KGgo=\r\n"
      "--rel--\r\n"
      "--outer\r\n"
      "Content-Type: application/pdf\r\n"
      "Content-Disposition: attachment; filename*=UTF-8''%C3%A9t%C3%A9%20report.pdf\r\n"
      "Content-Transfer-Encoding: base64\r\n"
      "\r\n"
      "JVBERi0xLjQK\r\n"
      "--outer\r\n"
      "Content-Type: application/octet-stream\r\n"
      "Content-Disposition: attachment;\r\n"
      " filename*0*=UTF-8''%E6%97%A5%E6%9C%AC;\r\n"
      " filename*1=\" part two.bin\"\r\n"
      "\r\n"
      "raw bytes\r\n"
      "--outer\r\n"
      "Content-Type: text/plain; name=\"=?ISO-8859-1?Q?r=E9sum=E9?= =?UTF-8?B?LnR4dA==?=\"\r\n"
      "Content-Disposition: attachment\r\n"
      "\r\n"
      "a text file, attached\r\n"
      "--outer--\r\n"
      "epilogue\r\n";
  auto m = parse_mime(raw);
  INFO(names(m));
  CHECK(m.problems.empty());
  CHECK(m.text == "café crème, a soft break");  // the CRLF before a boundary is the boundary's (RFC 2046)
  CHECK(m.html == "<p>\xe2\x82\xac 5, <img src=\"cid:logo@x\"></p>");  // windows-1252 0x80 is the euro sign
  REQUIRE(m.attachments.size() == 4);
  auto* logo = named(m, "logo@x");
  REQUIRE(logo);
  CHECK(logo->content_id == "logo@x");
  CHECK(logo->is_inline);
  CHECK(logo->content_type == "image/png");
  CHECK(logo->bytes == std::string("\x89PNG\r\n\x1a\n", 8));
  auto* pdf = named(m, "été report.pdf");
  REQUIRE(pdf);
  CHECK_FALSE(pdf->is_inline);
  CHECK(pdf->bytes == "%PDF-1.4\n");
  auto* continued = named(m, "日本 part two.bin");
  REQUIRE(continued);
  CHECK(continued->bytes == "raw bytes");
  auto* resume = named(m, "résumé.txt");
  REQUIRE(resume);
  CHECK(resume->content_type == "text/plain");
  CHECK(resume->bytes == "a text file, attached");
}

TEST_CASE("mime: an attached message is one attachment, its own parts stay in it", "[unit]") {
  const std::string inner =
      "From: b@example.com\r\n"
      "Subject: inner\r\n"
      "Content-Type: multipart/mixed; boundary=\"in\"\r\n"
      "\r\n"
      "--in\r\n"
      "Content-Type: text/plain\r\n"
      "\r\n"
      "inner body\r\n"
      "--in\r\n"
      "Content-Type: application/zip\r\n"
      "Content-Disposition: attachment; filename=\"inner.zip\"\r\n"
      "\r\n"
      "PK\r\n"
      "--in--\r\n";
  const std::string raw =
      "Subject: outer\r\n"
      "Content-Type: multipart/mixed; boundary=\"out\"\r\n"
      "\r\n"
      "--out\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      "\r\n"
      "outer body\r\n"
      "--out\r\n"
      "Content-Type: message/rfc822\r\n"
      "Content-Disposition: attachment; filename=\"forwarded.eml\"\r\n"
      "\r\n" +
      inner + "--out--\r\n";
  auto m = parse_mime(raw);
  INFO(names(m));
  CHECK(m.problems.empty());
  CHECK(m.text == "outer body");
  REQUIRE(m.attachments.size() == 1);
  const auto& a = m.attachments[0];
  CHECK(a.is_message);
  CHECK(a.name == "forwarded.eml");
  CHECK(a.content_type == "message/rfc822");
  CHECK(a.bytes.find("Subject: inner") != std::string::npos);
  CHECK(a.bytes.find("inner.zip") != std::string::npos);
  CHECK(a.bytes.find("inner body") != std::string::npos);
}

TEST_CASE("mime: damage is reported and what can be read is kept", "[unit]") {
  SECTION("a multipart without a boundary: its bytes are not lost") {
    auto m = parse_mime("Subject: x\r\nContent-Type: multipart/mixed\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nhello\r\n--zz--\r\n");
    INFO(names(m));
    REQUIRE_FALSE(m.problems.empty());
    CHECK_THAT(m.problems.front(), Catch::Contains("boundary"));
  }
  SECTION("a multipart whose closing boundary never comes: its parts still read") {
    auto m = parse_mime(
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--b\r\n"
        "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=cut.bin\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nAAEC");
    INFO(names(m));
    CHECK(m.text == "first");
    auto* cut = named(m, "cut.bin");
    REQUIRE(cut);
    CHECK(cut->bytes == std::string("\x00\x01\x02", 3));
  }
  SECTION("base64 with garbage and no padding decodes what is there") {
    auto m = parse_mime(
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: image/gif\r\n"
        "Content-Disposition: inline; filename=a.gif\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lG!!OD\r\nlh\r\n--b--\r\n");
    INFO(names(m));
    auto* gif = named(m, "a.gif");
    REQUIRE(gif);
    CHECK(gif->is_inline);
    CHECK(gif->bytes.rfind("GIF8", 0) == 0);
  }
  SECTION("not MIME at all: the bytes become the text body") {
    auto m = parse_mime("");
    CHECK(m.attachments.empty());
    auto plain = parse_mime("just a line of text without any header\n");
    CHECK(plain.html.empty());
    CHECK((plain.text.find("just a line") != std::string::npos || !plain.problems.empty()));
  }
  SECTION("invalid UTF-8 in a body and a name comes out valid") {
    auto m = parse_mime(
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbad \xff\xfe end\r\n"
        "--b\r\nContent-Type: application/octet-stream; name=\"n\xff.bin\"\r\n\r\nx\r\n--b--\r\n");
    INFO(names(m));
    CHECK(valid_utf8(m.text));
    REQUIRE(m.attachments.size() == 1);
    CHECK(valid_utf8(m.attachments[0].name));
  }
  SECTION("thousands of nested multiparts: bounded, no crash") {
    std::string raw;
    for (int i = 0; i < 2000; ++i) raw += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\r\n\r\n--b" + std::to_string(i) + "\r\n";
    raw += "Content-Type: text/plain\r\n\r\ndeep\r\n";
    auto m = parse_mime(raw);
    INFO(names(m));
    CHECK_FALSE(m.problems.empty());
  }
}
