#include "m365vault/export/entry_names.hpp"

#include <array>
#include <cctype>
#include <cstring>

namespace m365vault::exporting {

namespace {

constexpr std::size_t kMaxComponent = 200;

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one.
std::size_t utf8_len(std::string_view s, std::size_t i) {
  auto b = static_cast<unsigned char>(s[i]);
  std::size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  if (n == 2 && b < 0xC2) return 0;  // overlong
  return n;
}

bool reserved_device(std::string_view name) {
  auto dot = name.find('.');
  std::string base(name.substr(0, dot));
  while (!base.empty() && base.back() == ' ') base.pop_back();
  for (auto& c : base) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static const std::array<const char*, 4> plain = {"CON", "PRN", "AUX", "NUL"};
  for (auto* p : plain)
    if (base == p) return true;
  return base.size() == 4 && (base.starts_with("COM") || base.starts_with("LPT")) && base[3] >= '1' && base[3] <= '9';
}

std::string fold(std::string_view s) {
  std::string f(s);
  for (auto& c : f) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return f;
}

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string join(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string p(dir);
  p += '/';
  p += name;
  return p;
}

}  // namespace

std::string safe_component(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (std::size_t i = 0; i < name.size();) {
    auto c = static_cast<unsigned char>(name[i]);
    std::size_t n = utf8_len(name, i);
    bool replace = n == 0 || (n == 1 && (c < 0x20 || c == 0x7F || std::strchr("<>:\"/\\|?*", c) != nullptr));
    if (out.size() + (replace ? 1 : n) > kMaxComponent) break;  // cut on a character boundary
    if (replace) {
      out += '_';
      i += n == 0 ? 1 : n;
    } else {
      out.append(name.substr(i, n));
      i += n;
    }
  }
  while (!out.empty() && (out.back() == '.' || out.back() == ' ')) out.pop_back();
  while (!out.empty() && out.front() == ' ') out.erase(out.begin());
  if (out.empty()) return "_";
  if (reserved_device(out)) out.insert(out.begin(), '_');
  return out;
}

std::string safe_path(std::string_view path) {
  std::string out;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find_first_of("/\\", start);
    if (end == std::string_view::npos) end = path.size();
    auto part = path.substr(start, end - start);
    if (!part.empty()) {
      if (!out.empty()) out += '/';
      out += safe_component(part);
    }
    start = end + 1;
  }
  return out;
}

bool EntryNames::claim(const std::string& path) { return used_.insert(fnv1a(fold(path))).second; }

std::string EntryNames::unique(std::string_view dir, std::string_view stem, std::string_view ext) {
  auto base = safe_component(stem);
  // Room for the extension and a " (n)" within the component limit.
  if (base.size() + ext.size() + 8 > kMaxComponent) base = safe_component(base.substr(0, kMaxComponent - ext.size() - 8));
  auto first = join(dir, base + std::string(ext));
  if (claim(first)) return first;
  for (int n = 2;; ++n) {
    auto candidate = join(dir, base + " (" + std::to_string(n) + ")" + std::string(ext));
    if (claim(candidate)) return candidate;
  }
}

std::string EntryNames::unique_dir(std::string_view dir, std::string_view name) { return unique(dir, name, ""); }

}  // namespace m365vault::exporting
