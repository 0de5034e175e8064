#include "m365vault/storage/fs_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "m365vault/core/error.hpp"

namespace m365vault::storage {

namespace fs = std::filesystem;

namespace {

// Closes a file descriptor on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

[[noreturn]] void fail(const std::string& what, const fs::path& path, int err) {
  Errc code = (err == EACCES || err == EPERM || err == EROFS) ? Errc::storage_denied : Errc::storage;
  std::string hint;
  if (err == ENOSPC || err == EDQUOT) hint = " (the filesystem is full: free space or grow the volume)";
  if (err == EFBIG) hint = " (larger than the filesystem or the process file-size limit allows)";
  if (err == EROFS) hint = " (the filesystem is read-only)";
  if (err == EACCES || err == EPERM) hint = " (check the directory's owner and mode)";
  throw Error(code, what + " '" + path.string() + "': " + std::strerror(err) + hint);
}

void fsync_dir(const fs::path& dir) {
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.fd < 0) fail("open directory", dir, errno);
  if (::fsync(d.fd) != 0 && errno != EINVAL) fail("fsync directory", dir, errno);
}

// mkdir -p below root, fsyncing each parent whose entries changed, so that a new
// object's directory survives a crash along with the object.
void make_dirs(const fs::path& root, const fs::path& dir) {
  if (dir == root) return;
  struct stat st{};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) fail("not a directory", dir, ENOTDIR);
    return;
  }
  make_dirs(root, dir.parent_path());
  if (::mkdir(dir.c_str(), 0755) != 0) {
    if (errno == EEXIST) return;  // a concurrent writer made it
    fail("create directory", dir, errno);
  }
  fsync_dir(dir.parent_path());
}

void write_all(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), std::min<std::size_t>(data.size(), 1u << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write", path, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

FsStore::FsStore(fs::path root) : root_(std::move(root)) {
  struct stat st{};
  if (::stat(root_.c_str(), &st) != 0) fail("open repository directory", root_, errno);
  if (!S_ISDIR(st.st_mode)) fail("open repository directory", root_, ENOTDIR);
}

Capabilities FsStore::capabilities() const {
  Capabilities c;
  c.atomic_replace = true;
  c.object_lock = false;
  c.consistent_list = true;
  return c;
}

std::string FsStore::describe() const { return "file:" + root_.string(); }

void FsStore::put(std::string_view key, std::string_view data, const PutOptions&) {
  validate_key(key);
  fs::path target = root_ / std::string(key);
  fs::path dir = target.parent_path();
  make_dirs(root_, dir);
  std::string tmpl = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  Fd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (fd.fd < 0) fail("create temporary file in", dir, errno);
  try {
    if (::fchmod(fd.fd, 0644) != 0) fail("chmod", tmpl, errno);
    write_all(fd.fd, data, tmpl);
    if (::fsync(fd.fd) != 0) fail("fsync", tmpl, errno);
    if (::close(fd.release()) != 0) fail("close", tmpl, errno);
    if (::rename(tmpl.c_str(), target.c_str()) != 0) fail("rename into place", target, errno);
  } catch (...) {
    ::unlink(tmpl.c_str());
    throw;
  }
  fsync_dir(dir);
}

std::optional<std::string> FsStore::get(std::string_view key, ByteRange range) {
  validate_key(key);
  fs::path path = root_ / std::string(key);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    fail("open", path, errno);
  }
  struct stat st{};
  if (::fstat(fd.fd, &st) != 0) fail("stat", path, errno);
  if (S_ISDIR(st.st_mode)) return std::nullopt;
  auto size = static_cast<std::uint64_t>(st.st_size);
  if ((range.length && *range.length == 0) || (range.offset >= size && !(size == 0 && range.offset == 0)))
    throw Error(Errc::bad_request, "read '" + std::string(key) + "': range offset " + std::to_string(range.offset) +
                                       " is outside the object (" + std::to_string(size) + " bytes)");
  std::uint64_t end = range.length ? std::min(size, range.offset + *range.length) : size;
  std::string out(end - range.offset, '\0');
  std::size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd.fd, out.data() + done, out.size() - done, static_cast<off_t>(range.offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("read", path, errno);
    }
    if (n == 0) {  // truncated under us by a concurrent replace of a different size
      out.resize(done);
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  return out;
}

std::optional<ObjectInfo> FsStore::stat(std::string_view key) {
  validate_key(key);
  fs::path path = root_ / std::string(key);
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    fail("stat", path, errno);
  }
  if (!S_ISREG(st.st_mode)) return std::nullopt;
  return ObjectInfo{std::string(key), static_cast<std::uint64_t>(st.st_size)};
}

namespace {
// Appends every regular file below dir (relative key rel) whose key starts with
// prefix, skipping dot entries (temporary files).
void walk(const fs::path& dir, const std::string& rel, std::string_view prefix, std::vector<ObjectInfo>& out) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
  if (!d) {
    if (errno == ENOENT || errno == ENOTDIR) return;
    fail("list directory", dir, errno);
  }
  while (dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    std::string key = rel.empty() ? name : rel + "/" + name;
    // Prune subtrees that cannot hold a matching key.
    std::size_t n = std::min(key.size(), prefix.size());
    if (key.compare(0, n, prefix.substr(0, n)) != 0) continue;
    struct stat st{};
    fs::path p = dir / name;
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // removed while listing
      fail("stat", p, errno);
    }
    if (S_ISDIR(st.st_mode)) {
      walk(p, key, prefix, out);
    } else if (S_ISREG(st.st_mode) && key.size() >= prefix.size()) {
      out.push_back({key, static_cast<std::uint64_t>(st.st_size)});
    }
  }
}
}  // namespace

ListPage FsStore::list(std::string_view prefix, std::string_view token, std::size_t max_keys) {
  validate_prefix(prefix);
  if (max_keys == 0 || max_keys > 1000) throw Error(Errc::bad_request, "list: max_keys must be 1..1000");
  // Start at the deepest directory the prefix names completely.
  std::string base;
  if (auto slash = prefix.rfind('/'); slash != std::string_view::npos) base = std::string(prefix.substr(0, slash));
  std::vector<ObjectInfo> all;
  walk(base.empty() ? root_ : root_ / base, base, prefix, all);
  std::sort(all.begin(), all.end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  ListPage page;
  auto it = token.empty() ? all.begin()
                          : std::upper_bound(all.begin(), all.end(), token,
                                             [](std::string_view t, const ObjectInfo& o) { return t < o.key; });
  for (; it != all.end() && page.objects.size() < max_keys; ++it) page.objects.push_back(*it);
  if (it != all.end() && !page.objects.empty()) page.next_token = page.objects.back().key;
  return page;
}

std::size_t FsStore::remove_stale_temporaries(std::chrono::seconds age) {
  std::size_t removed = 0;
  auto cutoff = fs::file_time_type::clock::now() - age;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root_, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.size() < 2 || name[0] != '.' || name.find(".tmp-") == std::string::npos) continue;
    std::error_code e2;
    if (!it->is_regular_file(e2) || it->last_write_time(e2) > cutoff || e2) continue;
    if (::unlink(it->path().c_str()) == 0) ++removed;
  }
  if (ec) fail("scan for temporary files", root_, ec.value());
  return removed;
}

void FsStore::remove(std::string_view key) {
  validate_key(key);
  fs::path path = root_ / std::string(key);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return;
    fail("remove", path, errno);
  }
  fsync_dir(path.parent_path());
}

}  // namespace m365vault::storage
