// RFC 5322 / MIME rendering of generated and API-created messages, the way Exchange
// serves `$value`: transport headers first, CRLF line ends, encoded words for
// non-ASCII headers, RFC 2231 file names, quoted-printable bodies, base64 parts.
#include <algorithm>
#include <array>
#include <cstring>

#include "model.hpp"

namespace m365vault::emulator {

namespace {

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// Encoded words of at most 45 bytes of UTF-8 each, never splitting a character.
std::string encode_words(std::string_view s) {
  std::string out;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t n = std::min<std::size_t>(45, s.size() - i);
    while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80) --n;
    if (!out.empty()) out += "\r\n ";
    out += "=?utf-8?B?" + base64(s.substr(i, n)) + "?=";
    i += n;
  }
  return out;
}

std::string header_text(std::string_view s) { return is_ascii(s) ? std::string(s) : encode_words(s); }

std::string mailbox_header(const Person& p) {
  if (p.name.empty()) return "<" + p.address + ">";
  if (!is_ascii(p.name)) return encode_words(p.name) + " <" + p.address + ">";
  std::string q = "\"";
  for (char c : p.name) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\" <" + p.address + ">";
}

std::string address_list(const std::vector<Person>& ps) {
  std::string s;
  for (auto& p : ps) {
    if (!s.empty()) s += ",\r\n\t";
    s += mailbox_header(p);
  }
  return s;
}

// Quoted-printable (RFC 2045) of UTF-8 text whose line breaks are CRLF.
std::string quoted_printable(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 11 / 10 + 16);
  std::size_t col = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      // Trailing whitespace before a hard break must be encoded.
      if (!out.empty() && (out.back() == ' ' || out.back() == '\t')) {
        char w = out.back();
        out.pop_back();
        out += '=';
        out += hex[static_cast<unsigned char>(w) >> 4];
        out += hex[static_cast<unsigned char>(w) & 15];
      }
      out += "\r\n";
      ++i;
      col = 0;
      continue;
    }
    std::string piece;
    if ((c >= 33 && c <= 126 && c != '=') || c == ' ' || c == '\t') piece = std::string(1, static_cast<char>(c));
    else piece = std::string{'=', hex[c >> 4], hex[c & 15]};
    if (col + piece.size() > 75) {
      out += "=\r\n";
      col = 0;
    }
    out += piece;
    col += piece.size();
  }
  if (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out += "=\r\n";
  return out;
}

// Two base64 characters for every 12-bit value: halves the work of the inner loop,
// which is most of the cost of serving MIME.
const std::array<std::array<char, 2>, 4096>& pair_table() {
  static const auto table = [] {
    static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::array<std::array<char, 2>, 4096> t{};
    for (int i = 0; i < 4096; ++i) t[static_cast<std::size_t>(i)] = {a[i >> 6], a[i & 63]};
    return t;
  }();
  return table;
}

void base64_lines(std::string& out, std::string_view raw) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto& pairs = pair_table();
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  std::size_t n = raw.size();
  std::size_t start = out.size();
  out.resize(start + (n + 2) / 3 * 4 + ((n + 56) / 57) * 2);
  char* o = out.data() + start;
  std::size_t i = 0;
  while (i < n) {
    std::size_t line = std::min<std::size_t>(57, n - i);
    std::size_t end = i + line;
    for (; i + 2 < end; i += 3) {
      std::uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
      std::memcpy(o, pairs[v >> 12].data(), 2);
      std::memcpy(o + 2, pairs[v & 4095].data(), 2);
      o += 4;
    }
    if (i < end) {
      std::uint32_t v = p[i] << 16;
      if (i + 1 < end) v |= p[i + 1] << 8;
      *o++ = a[v >> 18];
      *o++ = a[(v >> 12) & 63];
      *o++ = i + 1 < end ? a[(v >> 6) & 63] : '=';
      *o++ = '=';
      i = end;
    }
    *o++ = '\r';
    *o++ = '\n';
  }
  out.resize(static_cast<std::size_t>(o - out.data()));
}

std::string rfc2231(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string o = "utf-8''";
  for (unsigned char c : s) {
    if (std::isalnum(c) || std::strchr("!#$&+-.^_`|~", c)) o += static_cast<char>(c);
    else o += std::string{'%', hex[c >> 4], hex[c & 15]};
  }
  return o;
}

std::string quoted_param(std::string_view s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

std::string magic_bytes(const std::string& content_type) {
  if (content_type == "application/pdf") return "%PDF-1.7\n";
  if (content_type == "image/png") return "\x89PNG\r\n\x1a\n";
  if (content_type == "image/jpeg") return "\xff\xd8\xff\xe0";
  return "PK\x03\x04";
}

void fill_random(std::string& s, std::size_t from, Rng& r) {
  std::size_t i = from;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t v = r.next();
    std::memcpy(s.data() + i, &v, 8);
  }
  std::uint64_t v = r.next();
  if (i < s.size()) std::memcpy(s.data() + i, &v, s.size() - i);
}

}  // namespace

void Attachment::append_base64(std::string& out) const {
  if (data || kind != file || content_type == "text/plain" || size < 4096) {
    base64_lines(out, bytes());
    return;
  }
  // Generated binary content, produced and encoded 456 * 144 bytes at a time (a
  // multiple of both the 8-byte generator word and the 57-byte base64 line), giving
  // exactly the bytes of bytes() without holding them.
  constexpr std::size_t kChunk = 456 * 144;
  std::string magic = magic_bytes(content_type);
  Rng r(seed);
  std::string buf(kChunk, '\0');
  std::size_t done = 0;
  std::uint64_t word = 0;
  std::size_t word_left = 0;  // bytes of `word` not used yet
  const std::size_t m = std::min(magic.size(), static_cast<std::size_t>(size));
  while (done < size) {
    std::size_t n = std::min<std::size_t>(kChunk, size - done);
    std::size_t k = 0;
    for (; k < n && done + k < m; ++k) buf[k] = magic[done + k];
    while (k < n) {
      if (word_left == 0) {
        word = r.next();
        word_left = 8;
      }
      if (word_left == 8 && k + 8 <= n) {
        std::memcpy(buf.data() + k, &word, 8);
        k += 8;
        word_left = 0;
        continue;
      }
      unsigned char bytes8[8];
      std::memcpy(bytes8, &word, 8);
      buf[k++] = static_cast<char>(bytes8[8 - word_left]);
      --word_left;
    }
    base64_lines(out, std::string_view(buf.data(), n));
    done += n;
  }
}

std::string Attachment::bytes() const {
  if (data) return *data;
  Rng r(seed);
  if (kind == reference) return {};
  if (kind == item) {
    MessageContent c;
    static const std::vector<std::string> subjects = {"Minutes", "Travel booking", "Original request"};
    c.subject = name.rfind("Fwd: ", 0) == 0 ? name.substr(5) : name;
    c.from = {"Original Sender", "sender@partner.example"};
    c.to = {{"Someone", "someone@partner.example"}};
    c.sent = c.received = kBaseEpoch - 86400 * 30 - static_cast<std::int64_t>(r.below(86400 * 30));
    c.internet_message_id = "<" + to_hex(sha1(std::to_string(seed))).substr(0, 24) + "@partner.example>";
    c.html = false;
    c.text_body = "This message was attached. " + subjects[r.below(subjects.size())] + ".\r\n";
    return build_mime(c, "someone@partner.example");
  }
  std::string s(size, '\0');
  if (content_type == "text/plain") {
    static const char* line = "The quick brown fox jumps over the lazy dog. Größe: 42 \xe2\x82\xac\r\n";
    std::size_t n = std::strlen(line);
    for (std::size_t i = 0; i < size; ++i) s[i] = line[i % n];
    // Never end inside a multi-byte character.
    while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0x80)) s.back() = '.';
    return s;
  }
  std::string magic = magic_bytes(content_type);
  std::size_t m = std::min(magic.size(), s.size());
  std::memcpy(s.data(), magic.data(), m);
  fill_random(s, m, r);
  return s;
}

std::string build_mime(const MessageContent& content, const std::string& owner_address) {
  // Reference attachments are links in the body, not MIME parts.
  MessageContent c = content;
  std::erase_if(c.attachments, [](const Attachment& a) { return a.kind == Attachment::reference; });
  std::string h;
  const std::string key = to_hex(sha1(c.internet_message_id));
  const std::string host = owner_address.substr(owner_address.find('@') + 1);
  h.reserve(4096);
  if (!c.is_draft) {
    h += "Received: from EMU1PR01MB" + key.substr(0, 4) + ".prod.emulator.example (10.0." + std::to_string(key[0] % 200) +
         ".17) by\r\n EMU1PR01MB0001.prod.emulator.example with HTTPS; " + rfc5322_time(c.received) + "\r\n";
    h += "Received: from mail." + host + " (192.0.2.10) by EMU1PR01MB" + key.substr(0, 4) +
         ".prod.emulator.example\r\n (10.0.0.2) with Microsoft SMTP Server (version=TLS1_2,\r\n"
         " cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7000.0; " +
         rfc5322_time(c.received - 1) + "\r\n";
  }
  h += "From: " + mailbox_header(c.from) + "\r\n";
  if (!c.to.empty()) h += "To: " + address_list(c.to) + "\r\n";
  if (!c.cc.empty()) h += "CC: " + address_list(c.cc) + "\r\n";
  h += "Subject: " + header_text(c.subject) + "\r\n";
  std::string topic = c.subject.rfind("RE: ", 0) == 0 ? c.subject.substr(4) : c.subject;
  h += "Thread-Topic: " + header_text(topic) + "\r\n";
  h += "Thread-Index: " + base64(sha1(c.conversation_key).substr(0, 16)) + "\r\n";
  h += "Date: " + rfc5322_time(c.sent) + "\r\n";
  h += "Message-ID: " + c.internet_message_id + "\r\n";
  if (!c.in_reply_to.empty()) h += "In-Reply-To: " + c.in_reply_to + "\r\n";
  if (!c.references.empty()) h += "References: " + c.references + "\r\n";
  h += "Accept-Language: en-US\r\nContent-Language: en-US\r\n";
  if (c.importance == "high") h += "Importance: high\r\nX-Priority: 1\r\n";
  if (!c.categories.empty()) {
    std::string k;
    for (auto& cat : c.categories) k += (k.empty() ? "" : ", ") + cat;
    h += "Keywords: " + header_text(k) + "\r\n";
  }
  bool has_attach = std::any_of(c.attachments.begin(), c.attachments.end(), [](auto& a) { return !a.is_inline; });
  h += std::string("X-MS-Has-Attach: ") + (has_attach ? "yes" : "") + "\r\n";
  h += "X-MS-Exchange-Organization-SCL: -1\r\nX-MS-TNEF-Correlator:\r\n";
  h += "X-MS-Exchange-Organization-RecordReviewCfmType: 0\r\n";
  h += "MIME-Version: 1.0\r\n";

  const std::string b_mixed = "_004_" + key.substr(0, 24) + "_";
  const std::string b_rel = "_005_" + key.substr(0, 24) + "_";
  const std::string b_alt = "_000_" + key.substr(0, 24) + "_";

  auto text_part = [&](std::string& o, const std::string& type, const std::string& body) {
    o += "Content-Type: " + type + "; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n";
    o += quoted_printable(body);
    if (o.size() < 2 || o.compare(o.size() - 2, 2, "\r\n") != 0) o += "\r\n";
  };
  auto alternative = [&](std::string& o) {
    if (!c.html) {
      text_part(o, "text/plain", c.text_body);
      return;
    }
    o += "Content-Type: multipart/alternative;\r\n\tboundary=\"" + b_alt + "\"\r\n\r\n";
    o += "--" + b_alt + "\r\n";
    text_part(o, "text/plain", c.text_body);
    o += "\r\n--" + b_alt + "\r\n";
    text_part(o, "text/html", c.html_body);
    o += "\r\n--" + b_alt + "--\r\n";
  };
  auto attachment_part = [&](std::string& o, const Attachment& a) {
    const std::string dates = "creation-date=\"" + rfc5322_time(c.sent) + "\";\r\n\tmodification-date=\"" +
                              rfc5322_time(c.sent) + "\"";
    if (a.kind == Attachment::item) {
      o += "Content-Type: message/rfc822\r\nContent-Disposition: attachment;\r\n\t" + dates + "\r\n\r\n";
      o += a.bytes();
      return;
    }
    const bool ascii = is_ascii(a.name);
    o += "Content-Type: " + a.content_type + "; name=" + (ascii ? quoted_param(a.name) : quoted_param(encode_words(a.name))) + "\r\n";
    o += "Content-Description: " + header_text(a.name) + "\r\n";
    o += std::string("Content-Disposition: ") + (a.is_inline ? "inline" : "attachment") + ";\r\n\t" +
         (ascii ? "filename=" + quoted_param(a.name) : "filename*=" + rfc2231(a.name)) +
         "; size=" + std::to_string(a.size) + ";\r\n\t" + dates + "\r\n";
    if (!a.content_id.empty()) o += "Content-ID: <" + a.content_id + ">\r\n";
    o += "Content-Transfer-Encoding: base64\r\n\r\n";
    a.append_base64(o);
  };

  std::uint64_t total = 0;
  for (auto& a : c.attachments) total += a.size * 4 / 3 + 1024;
  // The body is appended to the header block: one buffer, no final copy.
  std::string& body = h;
  body.reserve(h.size() + total + c.text_body.size() * 2 + c.html_body.size() * 2 + 2048);
  bool has_inline = std::any_of(c.attachments.begin(), c.attachments.end(), [](auto& a) { return a.is_inline; });
  auto related = [&](std::string& o) {
    if (!has_inline) {
      alternative(o);
      return;
    }
    o += "Content-Type: multipart/related;\r\n\tboundary=\"" + b_rel + "\";\r\n\ttype=\"multipart/alternative\"\r\n\r\n";
    o += "--" + b_rel + "\r\n";
    alternative(o);
    for (auto& a : c.attachments) {
      if (!a.is_inline) continue;
      o += "\r\n--" + b_rel + "\r\n";
      attachment_part(o, a);
    }
    o += "\r\n--" + b_rel + "--\r\n";
  };
  if (has_attach) {
    body += "Content-Type: multipart/mixed;\r\n\tboundary=\"" + b_mixed + "\"\r\n\r\n";
    body += "--" + b_mixed + "\r\n";
    related(body);
    for (auto& a : c.attachments) {
      if (a.is_inline) continue;
      body += "\r\n--" + b_mixed + "\r\n";
      attachment_part(body, a);
    }
    body += "\r\n--" + b_mixed + "--\r\n";
  } else {
    related(body);
  }
  // The top part's Content-Type line completes the message header block.
  return h;
}

std::string message_mime(const Tenant& t, std::uint32_t user, std::uint32_t index, const Msg& m) {
  if (m.custom_mime) return *m.custom_mime;
  auto c = message_content(t, user, index, m);
  return build_mime(c, user_person(t, user).address);
}

}  // namespace m365vault::emulator
