#include "mime.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>

#include "m365vault/storage/crypto.hpp"

namespace m365vault::restore {

namespace {

std::string lower(std::string_view s) {
  std::string o(s);
  for (auto& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

struct Headers {
  std::vector<std::pair<std::string, std::string>> list;  // lower-case name, unfolded value
  std::string get(std::string_view name) const {
    for (auto& [k, v] : list)
      if (k == name) return v;
    return "";
  }
};

// Splits a part into unfolded headers and its body (after the blank line).
std::pair<Headers, std::string_view> split_part(std::string_view raw) {
  Headers h;
  size_t p = 0;
  std::string cur_name, cur_value;
  auto flush = [&] {
    if (!cur_name.empty()) h.list.emplace_back(lower(cur_name), std::string(trim(cur_value)));
    cur_name.clear();
    cur_value.clear();
  };
  while (p < raw.size()) {
    size_t e = raw.find('\n', p);
    if (e == std::string_view::npos) e = raw.size();
    std::string_view line = raw.substr(p, e - p);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    p = e + 1;
    if (line.empty()) {
      flush();
      return {h, p <= raw.size() ? raw.substr(std::min(p, raw.size())) : std::string_view()};
    }
    if ((line[0] == ' ' || line[0] == '\t') && !cur_name.empty()) {
      cur_value += " ";
      cur_value += trim(line);
      continue;
    }
    flush();
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    cur_name = std::string(line.substr(0, colon));
    cur_value = std::string(line.substr(colon + 1));
  }
  flush();
  return {h, std::string_view()};
}

// "type/sub; a=b; c=\"d\"" -> value and parameters (names lower case). RFC 2231
// continuations are not joined (the sources we read do not split names).
std::pair<std::string, std::map<std::string, std::string>> parse_params(std::string_view v) {
  std::map<std::string, std::string> params;
  size_t semi = v.find(';');
  std::string value = lower(trim(v.substr(0, semi)));
  size_t p = semi;
  while (p != std::string_view::npos && p < v.size()) {
    ++p;
    while (p < v.size() && std::isspace(static_cast<unsigned char>(v[p]))) ++p;
    size_t eq = v.find('=', p);
    if (eq == std::string_view::npos) break;
    std::string name = lower(trim(v.substr(p, eq - p)));
    p = eq + 1;
    std::string val;
    if (p < v.size() && v[p] == '"') {
      ++p;
      while (p < v.size() && v[p] != '"') {
        if (v[p] == '\\' && p + 1 < v.size()) ++p;
        val += v[p++];
      }
      if (p < v.size()) ++p;
      p = v.find(';', p);
    } else {
      size_t end = v.find(';', p);
      val = std::string(trim(v.substr(p, end == std::string_view::npos ? std::string_view::npos : end - p)));
      p = end;
    }
    params[name] = val;
  }
  return {value, params};
}

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string decode_qp(std::string_view s, bool header = false) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (header && c == '_') {
      out += ' ';
    } else if (c == '=' && i + 1 < s.size()) {
      if (s[i + 1] == '\r' || s[i + 1] == '\n') {  // soft line break
        i += (s[i + 1] == '\r' && i + 2 < s.size() && s[i + 2] == '\n') ? 2 : 1;
      } else if (i + 2 < s.size() && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
        out += static_cast<char>(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
        i += 2;
      } else {
        out += c;
      }
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> decode_b64(std::string_view s) {
  std::string clean;
  clean.reserve(s.size());
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) clean += c;
  while (clean.size() % 4) clean += '=';  // tolerate missing padding
  return storage::crypto::base64_decode(clean);
}

std::string latin1_to_utf8(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return out;
}

std::string to_utf8(std::string bytes, const std::string& charset) {
  auto cs = lower(charset);
  if (cs == "iso-8859-1" || cs == "latin1" || cs == "windows-1252" || cs == "us-ascii") return latin1_to_utf8(bytes);
  return bytes;
}

// RFC 2231 extended value: charset'lang'percent-encoded.
std::string decode_2231(std::string_view v) {
  auto a = v.find('\''), b = a == std::string_view::npos ? a : v.find('\'', a + 1);
  if (b == std::string_view::npos) return std::string(v);
  std::string charset(v.substr(0, a)), out;
  auto enc = v.substr(b + 1);
  for (size_t i = 0; i < enc.size(); ++i) {
    if (enc[i] == '%' && i + 2 < enc.size() && hexval(enc[i + 1]) >= 0 && hexval(enc[i + 2]) >= 0) {
      out += static_cast<char>(hexval(enc[i + 1]) * 16 + hexval(enc[i + 2]));
      i += 2;
    } else {
      out += enc[i];
    }
  }
  return to_utf8(out, charset);
}

void walk(std::string_view raw, MimeMessage& m, int depth) {
  auto [h, body] = split_part(raw);
  auto [type, tparams] = parse_params(h.get("content-type"));
  if (type.empty()) type = "text/plain";
  auto [disp, dparams] = parse_params(h.get("content-disposition"));
  const std::string cte = lower(trim(h.get("content-transfer-encoding")));

  if (type.rfind("multipart/", 0) == 0) {
    auto boundary = tparams["boundary"];
    if (boundary.empty() || depth > 20) {
      m.problems.push_back("a " + type + " part without a usable boundary");
      return;
    }
    const std::string delim = "--" + boundary;
    size_t p = body.find(delim);
    while (p != std::string_view::npos) {
      size_t start = body.find('\n', p);
      if (start == std::string_view::npos) break;
      if (body.substr(p + delim.size(), 2) == "--") break;  // the closing delimiter
      ++start;
      size_t next = body.find("\n" + delim, start);
      if (next == std::string_view::npos) {
        m.problems.push_back("a " + type + " part without its closing boundary");
        next = body.size();
      }
      // The CRLF before the delimiter belongs to the delimiter.
      size_t end = next;
      if (end > start && body[end - 1] == '\r') --end;
      walk(body.substr(start, end - start), m, depth + 1);
      p = next == body.size() ? std::string_view::npos : next + 1;
    }
    return;
  }

  std::string name;
  if (dparams.count("filename*")) name = decode_2231(dparams["filename*"]);
  else if (dparams.count("filename")) name = decode_words(dparams["filename"]);
  else if (tparams.count("name*")) name = decode_2231(tparams["name*"]);
  else if (tparams.count("name")) name = decode_words(tparams["name"]);
  std::string cid(trim(h.get("content-id")));
  if (cid.size() >= 2 && cid.front() == '<' && cid.back() == '>') cid = cid.substr(1, cid.size() - 2);

  const bool is_text_body = (type == "text/plain" || type == "text/html") && disp != "attachment" && name.empty();
  if (type == "message/rfc822" && depth > 0) {
    MimeAttachment a;
    a.content_type = type;
    a.is_message = true;
    a.bytes = std::string(body);
    a.name = name.empty() ? "message.eml" : name;
    m.attachments.push_back(std::move(a));
    return;
  }
  std::string bytes;
  if (cte == "base64") {
    auto d = decode_b64(body);
    if (!d) {
      m.problems.push_back("a " + type + " part whose base64 does not decode");
      return;
    }
    bytes = std::move(*d);
  } else if (cte == "quoted-printable") {
    bytes = decode_qp(body);
  } else {
    bytes = std::string(body);
  }
  if (is_text_body) {
    auto text = to_utf8(std::move(bytes), tparams.count("charset") ? tparams["charset"] : "utf-8");
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
  a.bytes = std::move(bytes);
  m.attachments.push_back(std::move(a));
}

}  // namespace

std::string decode_words(std::string_view s) {
  std::string out;
  size_t p = 0;
  bool last_was_word = false;
  while (p < s.size()) {
    size_t start = s.find("=?", p);
    if (start == std::string_view::npos) {
      out += s.substr(p);
      break;
    }
    size_t q1 = s.find('?', start + 2);
    size_t q2 = q1 == std::string_view::npos ? q1 : s.find('?', q1 + 1);
    size_t end = q2 == std::string_view::npos ? q2 : s.find("?=", q2 + 1);
    if (end == std::string_view::npos) {
      out += s.substr(p);
      break;
    }
    auto between = s.substr(p, start - p);
    // Whitespace between two encoded words is not part of the text (RFC 2047 §6.2).
    if (!(last_was_word && trim(between).empty())) out += between;
    std::string charset = lower(s.substr(start + 2, q1 - start - 2));
    if (auto star = charset.find('*'); star != std::string::npos) charset.resize(star);
    char enc = static_cast<char>(std::toupper(static_cast<unsigned char>(s[q1 + 1])));
    auto text = s.substr(q2 + 1, end - q2 - 1);
    std::string decoded;
    if (enc == 'B') decoded = decode_b64(text).value_or(std::string(text));
    else decoded = decode_qp(text, true);
    out += to_utf8(std::move(decoded), charset);
    last_was_word = true;
    p = end + 2;
  }
  return out;
}

MimeMessage parse_mime(std::string_view raw) {
  MimeMessage m;
  auto [h, body] = split_part(raw);
  (void)body;
  m.message_id = h.get("message-id");
  m.in_reply_to = h.get("in-reply-to");
  m.references = h.get("references");
  walk(raw, m, 0);
  return m;
}

}  // namespace m365vault::restore
