// The Teams page's pieces: safe_html against hostile bodies, the page's threads
// and the JSON file's nesting (read back by Python's html.parser and json in
// zip_export_test).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "m365vault/core/error.hpp"
#include "m365vault/export/conversation.hpp"

using namespace m365vault;
using namespace m365vault::exporting;
using nlohmann::json;

namespace {
const ImageLink kNoImages = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
}

TEST_CASE("safe_html: what can run or fetch goes, text and simple formatting stay", "[unit]") {
  struct Case {
    const char* in;
    const char* out;
  };
  const Case cases[] = {
      {"<p>Hi <b>there</b></p>", "<p>Hi <b>there</b></p>"},
      {"<script>alert(1)</script>after", "after"},
      {"<SCRIPT type=x>alert(1)</ScRiPt >after", "after"},
      {"<script>never closed", ""},
      {"<style>body{display:none}</style>x", "x"},
      {"<iframe src=https://evil.example></iframe>x", "x"},
      {"<svg onload=alert(1)><circle/></svg>x", "x"},
      {"<p onclick=\"alert(1)\" style=\"color:red\" class=x>t</p>", "<p>t</p>"},
      {"<img src=x onerror=alert(1)>", "<span class=\"missing-image\">[image]</span>"},
      {"<a href=\"javascript:alert(1)\">x</a>", "<a>x</a>"},
      {"<a href=\"&#106;avascript:alert(1)\">x</a>", "<a>x</a>"},
      {"<a href=' JAVASCRIPT:alert(1)'>x</a>", "<a>x</a>"},
      {"<a href=\"https://example.com/?a=1&amp;b=2\" onmouseover=x>x</a>",
       "<a href=\"https://example.com/?a=1&amp;b=2\" rel=\"noopener noreferrer\">x</a>"},
      {"<a href='https://x\"onclick=\"alert(1)'>x</a>", "<a href=\"https://x&quot;onclick=&quot;alert(1)\" rel=\"noopener noreferrer\">x</a>"},
      {"<!-- <script>alert(1)</script> -->ok", "ok"},
      {"<at id=\"0\">Adele</at> said", "Adele said"},
      {"<emoji id=\"smile\" alt=\"\xF0\x9F\x99\x82\" title=\"Smile\"></emoji>", "\xF0\x9F\x99\x82"},
      {"a < b && c > d &amp; &#169; &bogus", "a &lt; b &amp;&amp; c &gt; d &amp; &#169; &amp;bogus"},
      {"<b><i>unclosed", "<b><i>unclosed</i></b>"},
      {"</div></b>stray closes", "stray closes"},
      {"<b><i>x</b>y", "<b><i>x</i></b>y"},
      {"<form action=x><input value=1><button>go</button></form>", "go"},
      {"<td colspan=2 rowspan=\"3x\">c</td>", "<td colspan=\"2\">c</td>"},
      {"<img src=\"https://graph.microsoft.com/v1.0/x/hostedContents/abc/$value\" alt='a\"b' width=20 height=\"1e9\">",
       "<img src=\"image abc.png\" alt=\"a&quot;b\" width=\"20\">"},
      {"<object data=x><param name=a></object><embed src=x>x", "x"},
  };
  const ImageLink link = [](std::string_view src) -> std::optional<std::string> {
    if (src.find("/hostedContents/abc/") != std::string_view::npos) return "image abc.png";
    return std::nullopt;
  };
  for (auto& c : cases) {
    INFO(c.in);
    CHECK(safe_html(c.in, link) == c.out);
  }
}

TEST_CASE("conversation page and JSON: replies under their post, a reply without its post marked", "[unit]") {
  ConversationHtml html;
  ConversationJson js;
  json post = {{"id", "1"}, {"from", {{"user", {{"displayName", "<b>Eve</b>"}}}}}, {"createdDateTime", "2026-01-01T00:00:00Z"},
               {"subject", "Plan"}, {"body", {{"contentType", "html"}, {"content", "<p>x</p>"}}}};
  json reply = {{"id", "2"}, {"deletedDateTime", "2026-01-02T00:00:00Z"}, {"body", {{"contentType", "html"}, {"content", ""}}}};
  // Each piece in turn (the operands of + have no set order).
  std::string page = html.begin("General <1>", "Sales & Co");
  page += html.message(post, false, kNoImages);
  page += html.message(reply, true, kNoImages);
  page += html.end();
  CHECK_THAT(page, Catch::Contains("<title>General &lt;1&gt; — Sales &amp; Co</title>"));
  CHECK_THAT(page, Catch::Contains("&lt;b&gt;Eve&lt;/b&gt;"));
  CHECK_THAT(page, Catch::Contains("This message was deleted."));
  CHECK_THAT(page, Catch::Contains("Content-Security-Policy"));
  CHECK(page.find("id=\"m-1\"") < page.find("class=\"replies\""));
  CHECK(page.find("class=\"replies\"") < page.find("id=\"m-2\""));

  std::string file = js.begin();
  file += js.message(R"({"id":"1"})", false, "i1", "v1");
  file += js.message(R"({"id":"2"})", true, "i2", "v2");
  file += js.message(R"({"id":"3"})", false, "i3", "v3");
  file += js.end();
  auto parsed = json::parse(file);
  REQUIRE(parsed.size() == 2);
  CHECK(parsed[0]["message"]["id"] == "1");
  CHECK(parsed[0]["replies"][0]["message"]["id"] == "2");
  CHECK(parsed[1]["replies"].empty());

  ConversationJson orphan;
  std::string lone_file = orphan.begin();
  lone_file += orphan.message(R"({"id":"9"})", true, "i9", "v9");
  lone_file += orphan.end();
  auto lone = json::parse(lone_file);
  CHECK(lone[0]["post_missing"] == true);
  CHECK(lone[0]["replies"][0]["version_id"] == "v9");
  ConversationJson none;
  std::string empty_file = none.begin();
  empty_file += none.end();
  CHECK(json::parse(empty_file).empty());

  // A field of the wrong type is an error naming it, not a crash.
  json bad = {{"id", "3"}, {"body", {{"content", 42}}}};
  ConversationHtml h2;
  CHECK_THROWS_WITH(h2.message(bad, false, kNoImages), Catch::Contains("body.content"));
}
