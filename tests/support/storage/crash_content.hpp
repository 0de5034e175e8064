#pragma once
// The blobs the crash writer stores: content number n is the same bytes in the
// writer and in the checker, so the checker can regenerate what was acknowledged.
#include <cstdint>
#include <cstring>
#include <random>
#include <string>

namespace m365vault::test {

inline std::string crash_content(std::uint64_t n) {
  std::mt19937_64 rng(n * 7919 + 1);
  std::size_t size = 1'000 + rng() % 300'000;
  std::string s(size, '\0');
  bool text = n % 3 != 0;
  for (std::size_t i = 0; i < size; i += 8) {
    std::uint64_t v = text ? 0x2065687420656874ull + (rng() % 4) : rng();  // "the the " or noise
    std::memcpy(s.data() + i, &v, std::min<std::size_t>(8, size - i));
  }
  return s;
}

}  // namespace m365vault::test
