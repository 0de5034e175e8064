#include "m365vault/export/conversation.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

#include "export_json.hpp"
#include "m365vault/core/text.hpp"

namespace m365vault::exporting {

using nlohmann::json;

namespace {

template <std::size_t N>
bool one_of(std::string_view name, const std::array<std::string_view, N>& set) {
  return std::find(set.begin(), set.end(), name) != set.end();
}

constexpr std::array<std::string_view, 39> kAllowed = {
    "p",     "br",    "b",     "strong", "i",     "em",   "u",       "s",    "strike", "del",
    "ins",   "sub",   "sup",   "span",   "div",   "blockquote", "pre", "code", "ul",     "ol",
    "li",    "h1",    "h2",    "h3",     "h4",    "h5",   "h6",      "table", "thead", "tbody",
    "tfoot", "tr",    "th",    "td",     "caption", "a",  "img",     "hr",   "small"};
constexpr std::array<std::string_view, 3> kVoid = {"br", "img", "hr"};
// Dropped with everything up to their end tag: their content is code, not text.
// (Elements without content, such as embed or input, are dropped as any other.)
constexpr std::array<std::string_view, 17> kDropWhole = {
    "script", "style", "iframe", "object", "template", "noscript", "textarea", "title", "svg",
    "math",   "head",  "select", "frameset", "noembed", "noframes", "xmp", "applet"};

bool digits(std::string_view v) {
  return !v.empty() && v.size() <= 6 && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The few entities that matter in an attribute value; the result is escaped again.
std::string decode_basic(std::string_view v) {
  static const std::array<std::pair<std::string_view, char>, 6> kEnt = {
      {{"&amp;", '&'}, {"&quot;", '"'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&#39;", '\''}, {"&apos;", '\''}}};
  std::string out;
  for (std::size_t i = 0; i < v.size();) {
    bool hit = false;
    if (v[i] == '&')
      for (auto& [e, c] : kEnt)
        if (v.substr(i, e.size()) == e) {
          out += c;
          i += e.size();
          hit = true;
          break;
        }
    if (!hit) out += v[i++];
  }
  return out;
}

bool safe_href(const std::string& href) {
  auto h = ascii_lower(href);
  return h.starts_with("https://") || h.starts_with("http://") || h.starts_with("mailto:");
}

// "&name;", "&#123;" or "&#x1F;" at s[i]: its length, else 0.
std::size_t entity_len(std::string_view s, std::size_t i) {
  std::size_t j = i + 1;
  if (j < s.size() && s[j] == '#') ++j;
  std::size_t start = j;
  while (j < s.size() && j - start < 32 && std::isalnum(static_cast<unsigned char>(s[j]))) ++j;
  if (j == start || j >= s.size() || s[j] != ';') return 0;
  return j + 1 - i;
}

struct Attr {
  std::string name, value;
};

// Reads a tag from s[i] == '<'. Returns false when it is not a tag (a lone '<').
bool read_tag(std::string_view s, std::size_t& i, std::string& name, bool& closing, std::vector<Attr>& attrs) {
  std::size_t j = i + 1;
  closing = j < s.size() && s[j] == '/';
  if (closing) ++j;
  if (j >= s.size() || !std::isalpha(static_cast<unsigned char>(s[j]))) return false;
  std::size_t n = j;
  while (n < s.size() && (std::isalnum(static_cast<unsigned char>(s[n])) || s[n] == '-' || s[n] == ':')) ++n;
  name = ascii_lower(s.substr(j, n - j));
  attrs.clear();
  j = n;
  for (;;) {
    while (j < s.size() && (std::isspace(static_cast<unsigned char>(s[j])) || s[j] == '/')) ++j;
    if (j >= s.size()) break;
    if (s[j] == '>') {
      ++j;
      break;
    }
    std::size_t a = j;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j])) && s[j] != '=' && s[j] != '>' && s[j] != '/') ++j;
    if (j == a) {  // a stray '=' and the like
      ++j;
      continue;
    }
    Attr attr{ascii_lower(s.substr(a, j - a)), {}};
    while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j < s.size() && s[j] == '=') {
      ++j;
      while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j < s.size() && (s[j] == '"' || s[j] == '\'')) {
        char q = s[j++];
        auto end = s.find(q, j);
        if (end == std::string_view::npos) end = s.size();
        attr.value = decode_basic(s.substr(j, end - j));
        j = std::min(end + 1, s.size());
      } else {
        std::size_t v = j;
        while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j])) && s[j] != '>') ++j;
        attr.value = decode_basic(s.substr(v, j - v));
      }
    }
    attrs.push_back(std::move(attr));
  }
  i = j;
  return true;
}

const std::string* attr(const std::vector<Attr>& attrs, std::string_view name) {
  for (auto& a : attrs)
    if (a.name == name) return &a.value;
  return nullptr;
}

std::string text_of(const json& j, const char* key, const char* within = nullptr) { return json_string(j, key, within); }

std::string sender(const json& m) {
  auto f = m.find("from");
  if (f == m.end() || !f->is_object()) return "(unknown sender)";
  for (const char* who : {"user", "application", "device"}) {
    auto w = f->find(who);
    if (w != f->end() && w->is_object()) {
      auto name = text_of(*w, "displayName", who);
      if (!name.empty()) return name;
    }
  }
  return "(unknown sender)";
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (char c : text) switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      case '\0': break;
      default: out += c;
    }
  return out;
}

std::string safe_html(std::string_view s, const ImageLink& image) {
  std::string out;
  out.reserve(s.size() + 64);
  std::vector<std::string> open;
  std::string name;
  std::vector<Attr> attrs;
  bool closing = false;
  for (std::size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '<') {
      if (s.substr(i, 4) == "<!--") {
        auto end = s.find("-->", i + 4);
        i = end == std::string_view::npos ? s.size() : end + 3;
        continue;
      }
      if (i + 1 < s.size() && (s[i + 1] == '!' || s[i + 1] == '?')) {
        auto end = s.find('>', i);
        i = end == std::string_view::npos ? s.size() : end + 1;
        continue;
      }
      std::size_t at = i;
      if (!read_tag(s, i, name, closing, attrs)) {
        out += "&lt;";
        i = at + 1;
        continue;
      }
      if (!closing && one_of(name, kDropWhole)) {
        // Everything up to its end tag goes (or to the end, when it never closes).
        auto rest = ascii_lower(s.substr(i));
        auto end = rest.find("</" + name);
        if (end == std::string::npos) break;
        i += end;
        std::string skip;
        (void)read_tag(s, i, skip, closing, attrs);
        continue;
      }
      if (name == "emoji" && !closing) {
        if (auto* alt = attr(attrs, "alt")) out += html_escape(*alt);
        continue;
      }
      if (!one_of(name, kAllowed)) continue;  // dropped; its text stays
      if (closing) {
        auto it = std::find(open.rbegin(), open.rend(), name);
        if (it == open.rend()) continue;
        // Closes what was left open inside it too.
        for (auto k = open.rbegin(); k != it + 1; ++k) out += "</" + *k + ">";
        open.erase((it + 1).base(), open.end());
        continue;
      }
      if (name == "img") {
        auto* src = attr(attrs, "src");
        auto local = src ? image(*src) : std::nullopt;
        auto* alt = attr(attrs, "alt");
        if (!local) {
          out += "<span class=\"missing-image\">[image";
          if (alt && !alt->empty()) out += ": " + html_escape(*alt);
          out += "]</span>";
          continue;
        }
        out += "<img src=\"" + html_escape(*local) + "\"";
        if (alt) out += " alt=\"" + html_escape(*alt) + "\"";
        for (const char* dim : {"width", "height"})
          if (auto* v = attr(attrs, dim); v && digits(*v)) out += std::string(" ") + dim + "=\"" + *v + "\"";
        out += ">";
        continue;
      }
      out += "<" + name;
      if (name == "a") {
        if (auto* href = attr(attrs, "href"); href && safe_href(*href))
          out += " href=\"" + html_escape(*href) + "\" rel=\"noopener noreferrer\"";
      } else if (name == "td" || name == "th") {
        for (const char* span : {"colspan", "rowspan"})
          if (auto* v = attr(attrs, span); v && digits(*v)) out += std::string(" ") + span + "=\"" + *v + "\"";
      } else if (name == "ol") {
        if (auto* v = attr(attrs, "start"); v && digits(*v)) out += " start=\"" + *v + "\"";
      }
      out += ">";
      if (!one_of(name, kVoid)) open.push_back(name);
      continue;
    }
    if (c == '&') {
      auto n = entity_len(s, i);
      if (n) {
        out.append(s.substr(i, n));
        i += n;
      } else {
        out += "&amp;";
        ++i;
      }
      continue;
    }
    if (c == '>') out += "&gt;";
    else if (c != '\0') out += c;
    ++i;
  }
  for (auto k = open.rbegin(); k != open.rend(); ++k) out += "</" + *k + ">";
  return out;
}

// ------------------------------------------------------------------- the page

std::string ConversationHtml::begin(std::string_view title, std::string_view context) {
  std::string t = html_escape(title), c = html_escape(context);
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         // No script runs, nothing is fetched from elsewhere: only the exported images beside the page.
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src 'self' file: data:; "
         "style-src 'unsafe-inline'\">\n<meta name=\"referrer\" content=\"no-referrer\">\n"
         "<title>" + t + " — " + c + "</title>\n<style>\n"
         "body{font-family:system-ui,sans-serif;max-width:60em;margin:1em auto;padding:0 1em;color:#222}\n"
         ".thread{border:1px solid #ccc;border-radius:4px;margin:1em 0;padding:.5em 1em}\n"
         ".replies{margin-left:2em;border-left:3px solid #ddd;padding-left:1em}\n"
         ".message header{color:#555;font-size:.9em}.sender{font-weight:bold;color:#222}\n"
         ".marker{font-style:italic;color:#a50}.body img{max-width:100%}.text{white-space:pre-wrap}\n"
         ".missing-image{color:#a00}.attachments{font-size:.9em}\n"
         "</style>\n</head>\n<body>\n<h1>" + t + "</h1>\n<p class=\"context\">" + c + "</p>\n";
}

std::string ConversationHtml::close_thread() {
  if (!in_thread_) return {};
  in_thread_ = false;
  return "</div>\n</article>\n";
}

std::string ConversationHtml::message(const json& m, bool reply, const ImageLink& image) {
  std::string piece = std::string("<div class=\"message ") + (reply ? "reply" : "post") + "\" id=\"m-" +
                      html_escape(text_of(m, "id")) + "\">\n<header><span class=\"sender\">" + html_escape(sender(m)) +
                      "</span> ";
  auto created = text_of(m, "createdDateTime");
  piece += "<time datetime=\"" + html_escape(created) + "\">" + html_escape(created) + "</time>";
  const bool deleted = !text_of(m, "deletedDateTime").empty();
  if (auto edited = text_of(m, "lastEditedDateTime"); !edited.empty())
    piece += " <span class=\"marker edited\">(edited " + html_escape(edited) + ")</span>";
  if (deleted)
    piece += " <span class=\"marker deleted\">(deleted " + html_escape(text_of(m, "deletedDateTime")) + ")</span>";
  if (auto imp = text_of(m, "importance"); !imp.empty() && imp != "normal")
    piece += " <span class=\"marker importance\">(" + html_escape(imp) + ")</span>";
  piece += "</header>\n";
  if (auto subject = text_of(m, "subject"); !subject.empty()) piece += "<h2 class=\"subject\">" + html_escape(subject) + "</h2>\n";
  auto b = m.find("body");
  std::string content, type;
  if (b != m.end() && b->is_object()) {
    content = text_of(*b, "content", "body");
    type = text_of(*b, "contentType", "body");
  }
  if (deleted && content.empty())
    piece += "<div class=\"body marker\">This message was deleted.</div>\n";
  else if (type == "html")
    piece += "<div class=\"body\">" + safe_html(content, image) + "</div>\n";
  else
    piece += "<div class=\"body text\">" + html_escape(content) + "</div>\n";
  if (auto a = m.find("attachments"); a != m.end() && a->is_array() && !a->empty()) {
    piece += "<ul class=\"attachments\">";
    for (auto& att : *a) {
      if (!att.is_object()) continue;
      auto nm = text_of(att, "name", "attachments");
      auto url = text_of(att, "contentUrl", "attachments");
      if (nm.empty()) nm = text_of(att, "contentType", "attachments");
      piece += "<li>Attachment: ";
      if (safe_href(url))
        piece += "<a href=\"" + html_escape(url) + "\" rel=\"noopener noreferrer\">" + html_escape(nm) + "</a>";
      else
        piece += html_escape(nm);
      piece += "</li>";
    }
    piece += "</ul>\n";
  }
  piece += "</div>\n";
  if (reply && in_thread_) return piece;
  // A post opens a thread: the post, then the box its replies go in.
  std::string out = close_thread() + "<article class=\"thread\">\n";
  if (reply)
    out += "<p class=\"marker\">The post this reply answers is not in the export.</p>\n<div class=\"replies\">\n" + piece;
  else
    out += piece + "<div class=\"replies\">\n";
  in_thread_ = true;
  return out;
}

std::string ConversationHtml::end() { return close_thread() + "</body>\n</html>\n"; }

// ------------------------------------------------------------------- the JSON

std::string ConversationJson::begin() { return "["; }

std::string ConversationJson::message(std::string_view stored, bool reply, const std::string& item_id,
                                      const std::string& version_id) {
  std::string out;
  auto head = "{\"item_id\": " + json(item_id).dump() + ", \"version_id\": " + json(version_id).dump() + ", \"message\": ";
  if (reply && in_thread_) {
    out += any_reply_ ? ",\n  " : "\n  ";
    any_reply_ = true;
    out += head;
    out += stored;
    out += "}";
    return out;
  }
  if (in_thread_) out += "]}";
  out += any_ ? ",\n" : "\n";
  any_ = true;
  if (reply) {
    // A reply whose post is not in the export: a thread of its own, marked.
    out += "{\"post_missing\": true, \"replies\": [\n  " + head;
    out += stored;
    out += "}";
    in_thread_ = true;
    any_reply_ = true;
    return out;
  }
  out += head;
  out += stored;
  out += ", \"replies\": [";
  in_thread_ = true;
  any_reply_ = false;
  return out;
}

std::string ConversationJson::end() {
  std::string out = in_thread_ ? "]}" : "";
  in_thread_ = false;
  return out + (any_ ? "\n]\n" : "]\n");
}

}  // namespace m365vault::exporting
