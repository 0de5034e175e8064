// Pure logic of the emulator model: ids, determinism, MIME structure.
#include <catch2/catch.hpp>

#include "model.hpp"

using namespace m365vault::emulator;

TEST_CASE("Outlook ids round-trip and carry the tenant tag", "[unit]") {
  TenantSpec s;
  s.tenant_id = "t";
  s.client_id = "c";
  s.users = 2;
  auto t = make_tenant(s);
  for (auto kind : {OutlookKey::folder, OutlookKey::message, OutlookKey::immutable, OutlookKey::attachment}) {
    OutlookKey k{kind, 1, 42, kind == OutlookKey::message || kind == OutlookKey::attachment ? 3u : 0u,
                 kind == OutlookKey::attachment ? 2u : 0u};
    auto id = outlook_id(*t, k);
    REQUIRE(id.find('/') == std::string::npos);
    REQUIRE(id.find('+') == std::string::npos);
    auto back = parse_outlook_id(*t, id);
    REQUIRE(back);
    REQUIRE(back->kind == kind);
    REQUIRE(back->index == 42);
    REQUIRE(back->moves == k.moves);
    REQUIRE(back->sub == k.sub);
  }
  TenantSpec other = s;
  other.tenant_id = "u";
  auto t2 = make_tenant(other);
  REQUIRE(!parse_outlook_id(*t2, outlook_id(*t, {OutlookKey::message, 0, 1, 0, 0})));
  REQUIRE(!parse_outlook_id(*t, "not-an-id"));
}

TEST_CASE("generated MIME is deterministic, CRLF-only and encodes non-ASCII headers", "[unit]") {
  TenantSpec s;
  s.tenant_id = "t";
  s.client_id = "c";
  s.seed = 99;
  s.users = 3;
  s.messages_per_user = 50;
  s.max_attachment_bytes = 100000;
  auto a = make_tenant(s);
  auto b = make_tenant(s);
  auto& ma = mailbox(*a, 1);
  auto& mb = mailbox(*b, 1);
  bool saw_encoded = false;
  for (std::uint32_t i = 0; i < ma.msgs.size(); ++i) {
    auto x = message_mime(*a, 1, i, ma.msgs[i]);
    REQUIRE(x == message_mime(*b, 1, i, mb.msgs[i]));
    REQUIRE(x.find("MIME-Version: 1.0\r\n") != std::string::npos);
    auto head = x.substr(0, x.find("\r\n\r\n"));
    for (unsigned char ch : head) REQUIRE(ch < 0x80);
    saw_encoded |= head.find("=?utf-8?B?") != std::string::npos;
    for (std::size_t p = x.find('\n'); p != std::string::npos; p = x.find('\n', p + 1)) REQUIRE(x[p - 1] == '\r');
  }
  REQUIRE(saw_encoded);
}

TEST_CASE("streamed base64 of a generated attachment equals its bytes", "[unit]") {
  for (std::string type : {"application/pdf", "image/png", "application/zip", "text/plain"}) {
    for (std::uint64_t size : {100ull, 4096ull, 65663ull, 65664ull, 65665ull, 200003ull, 1048576ull}) {
      Attachment a;
      a.content_type = type;
      a.size = size;
      a.seed = size * 31 + type.size();
      std::string encoded;
      a.append_base64(encoded);
      for (std::size_t p = encoded.find('\n'); p != std::string::npos; p = encoded.find('\n', p + 1)) {
        REQUIRE(encoded[p - 1] == '\r');
      }
      auto decoded = unbase64(encoded);
      INFO(type << " " << size);
      REQUIRE(decoded);
      REQUIRE(*decoded == a.bytes());
    }
  }
}
