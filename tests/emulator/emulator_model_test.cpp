// Pure logic of the emulator model: ids, determinism, MIME structure.
#include <catch2/catch.hpp>

#include <array>

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

// Vectors from rclone's onedrive/quickxorhash tests (random inputs, base64 in and out)
// and the "hello world" example of the Rust quickxorhash crate.
#include "crypto.hpp"
#include "quickxor.hpp"

TEST_CASE("quickXorHash matches the published vectors, in one piece and in fragments", "[unit]") {
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="},
      {"Sg==", "SgAAAAAAAAAAAAAAAQAAAAAAAAA="},
      {"tbQ=", "taAFAAAAAAAAAAAAAgAAAAAAAAA="},
      {"n6Neh7p6fFgm", "nxiFFw6hCz3wAQsmCQAAAAAAAAA="},
      {"XoJ1AsoR4fDYJrDqYs4=", "XhBEHQSgjAiEAx7YPgEs1CEGZwA="},
      {"2fuxhBJXtpWFe8dOfdGeHw==", "O9tHLAghgSvYohKFyMMxnNCHaHg="},
      {"T6LYJIfDh81JrAK309H2JMJTXis=", "zBTHrspn3mEcohlJdIUAbjGNaNg="},
      {"DWAAX5/CIfrmErgZa8ot6ZraeSbu", "LR2Z0PjuRYGKQB/mhQAuMrAGZbQ="},
      {"LlUe7wHerLqEtbSZLZgZa9u0m7hbiFs=", "TqVZpxs3cN61BnuFvwUtMtECTGQ="},
  };
  for (auto& [in, out] : vectors) {
    INFO(in);
    auto data = unbase64(in);
    REQUIRE(data);
    QuickXorHash h;
    h.update(*data);
    REQUIRE(base64(h.digest()) == out);
  }
  QuickXorHash hw;
  hw.update("hello world");
  const unsigned char expect[20] = {104, 40, 3, 27, 216, 240, 6, 16, 220, 225, 13, 114, 107, 3, 25, 0, 0, 0, 0, 0};
  REQUIRE(hw.digest() == std::string(reinterpret_cast<const char*>(expect), 20));
  // Long input fed in odd fragments hashes as one piece (lanes wrap every 160 bytes).
  std::string big;
  for (int i = 0; i < 100000; ++i) big += static_cast<char>((i * 7919) ^ (i >> 3));
  QuickXorHash whole, parts;
  whole.update(big);
  std::size_t at = 0, step = 1;
  while (at < big.size()) {
    auto n = std::min(step, big.size() - at);
    parts.update(std::string_view(big).substr(at, n));
    at += n;
    step = step * 3 % 997 + 1;
  }
  REQUIRE(parts.digest() == whole.digest());
}

TEST_CASE("quickXorHash of long inputs equals the byte-by-byte definition", "[unit]") {
  // The definition, one byte at a time: byte i XORed in at bit (11 * i) mod 160.
  auto reference = [](std::string_view d) {
    std::array<unsigned char, 20> block{};
    for (std::size_t i = 0; i < d.size(); ++i) {
      const std::size_t bit = (11 * i) % 160;
      const unsigned v = static_cast<unsigned char>(d[i]);
      for (int b = 0; b < 8; ++b)
        if (v >> b & 1) {
          const std::size_t at = (bit + static_cast<std::size_t>(b)) % 160;
          block[at / 8] ^= static_cast<unsigned char>(1u << (at % 8));
        }
    }
    std::uint64_t len = d.size();
    for (int i = 0; i < 8; ++i) block[static_cast<std::size_t>(12 + i)] ^= static_cast<unsigned char>(len >> (8 * i));
    return std::string(reinterpret_cast<const char*>(block.data()), 20);
  };
  std::string big;
  for (int i = 0; i < 200003; ++i) big += static_cast<char>((i * 2654435761u) >> 13);
  for (std::size_t n : {159u, 160u, 161u, 320u, 1000u, 65536u, 200003u}) {
    INFO(n);
    QuickXorHash h;
    h.update(std::string_view(big).substr(0, n));
    CHECK(h.digest() == reference(std::string_view(big).substr(0, n)));
  }
}

TEST_CASE("base64 round trips every length, both alphabets and line breaks, and bad input is refused", "[unit]") {
  std::string raw;
  for (int n = 0; n < 400; ++n) {
    INFO(n);
    const std::string enc = base64(raw, false, true), url = base64(raw, true, false);
    CHECK(enc.size() == (raw.size() + 2) / 3 * 4);
    CHECK(unbase64(enc) == std::optional<std::string>(raw));
    CHECK(unbase64(url) == std::optional<std::string>(raw));
    std::string wrapped;
    for (std::size_t i = 0; i < enc.size(); i += 76) wrapped += enc.substr(i, 76) + "\r\n";
    CHECK(unbase64(wrapped) == std::optional<std::string>(raw));
    raw += static_cast<char>(n * 37 + 11);
  }
  CHECK_FALSE(unbase64("QUJD*A=="));
  CHECK_FALSE(unbase64("QQ==QUJD"));  // data after padding
  CHECK_FALSE(unbase64("QUJDR"));     // a lone sextet
  CHECK_FALSE(unbase64("QQ==="));
}

TEST_CASE("generated file bytes are random-access and office files are zips", "[unit]") {
  for (auto kind : {Blob::binary, Blob::text}) {
    Blob b{kind, 42, 100003, 2, nullptr, nullptr};
    auto all = b.all();
    REQUIRE(all.size() == 100003);
    std::string part;
    b.read(4093, 9000, part);
    REQUIRE(part == all.substr(4093, 9000));
    REQUIRE(all.find("[edit 2]") != std::string::npos);
  }
  Blob o{Blob::office, 7, 50000, 1, nullptr, nullptr};
  auto z = o.all();
  REQUIRE(z.size() == 50000);
  REQUIRE(z.substr(0, 4) == std::string("PK\x03\x04", 4));
  REQUIRE(z.substr(z.size() - 22, 4) == std::string("PK\x05\x06", 4));
}
