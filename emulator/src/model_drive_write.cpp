// Restore-side file writes as replayable operations: folder create and file content
// (simple upload or a finished upload session), with OneDrive's conflict behaviours.
#include <strings.h>

#include "m365vault/core/error.hpp"
#include "model.hpp"

namespace m365vault::emulator {

std::optional<std::uint32_t> child_named(const DriveStore& d, std::uint32_t parent, const std::string& name) {
  for (std::uint32_t i = 1; i < d.items.size(); ++i) {
    const auto& e = d.items[i];
    if (e.alive && e.parent == static_cast<std::int32_t>(parent) && strcasecmp(e.name.c_str(), name.c_str()) == 0)
      return i;
  }
  return std::nullopt;
}

namespace {

[[noreturn]] void fail(Errc e, const std::string& code, const std::string& text) { throw Error(e, code + ": " + text); }

// OneDrive's rename: a number before the extension of files ("a 1.txt"), after the
// name of folders ("My Folder 1"), counting up until the name is free.
std::string free_name(const DriveStore& d, std::uint32_t parent, const std::string& name, bool folder) {
  auto dot = folder ? std::string::npos : name.rfind('.');
  if (dot == 0) dot = std::string::npos;  // ".profile" has no extension to keep
  const std::string stem = name.substr(0, dot), ext = dot == std::string::npos ? "" : name.substr(dot);
  for (std::uint32_t n = 1;; ++n) {
    std::string candidate = stem + " " + std::to_string(n) + ext;
    if (!child_named(d, parent, candidate)) return candidate;
  }
}

// The uploaded bytes with their hashes computed once: "raw" as an upload session
// hands them over, else "base64" (a simple upload, or the journal replayed).
Blob supplied_blob(const json& op) {
  std::shared_ptr<const std::string> bytes;
  if (auto raw = op.find("raw"); raw != op.end() && raw->is_string()) {
    bytes = std::make_shared<const std::string>(raw->get_ref<const std::string&>());
  } else {
    auto data = unbase64(op.value("base64", ""));
    if (!data) fail(Errc::bad_request, "invalidRequest", "The content is not valid base64.");
    bytes = std::make_shared<const std::string>(std::move(*data));
  }
  Blob b{Blob::supplied, 0, bytes->size(), 0, bytes, nullptr};
  b.hashes = std::make_shared<const FileHashes>(blob_hashes(b));
  return b;
}

}  // namespace

void check_drive_write(Tenant& t, const json& op) {
  const std::string kind = op.value("kind", "");
  if (kind != "drive_create_folder" && kind != "drive_put_file")
    fail(Errc::bad_request, "invalidRequest", "unknown write '" + kind + "'");
  auto& d = drive(t, op.value("drive", 0u));
  if (kind == "drive_put_file" && op.contains("item")) {
    const auto i = op["item"].get<std::uint32_t>();
    if (i == 0 || i >= d.items.size() || !d.items[i].alive || d.items[i].folder || d.items[i].package)
      fail(Errc::not_found, "itemNotFound", "The resource could not be found.");
    return;
  }
  const auto parent = op.value("parent", 0u);
  if (parent >= d.items.size() || !d.items[parent].alive || !d.items[parent].folder)
    fail(Errc::not_found, "itemNotFound", "The parent folder could not be found.");
  const std::string name = op.value("name", "");
  if (name.empty() || name == "." || name == "..")
    fail(Errc::bad_request, "invalidRequest", "The item name cannot be empty.");
  if (name.find_first_of("/\\:*?\"<>|") != std::string::npos)
    fail(Errc::bad_request, "invalidRequest", "The provided name contains invalid characters.");
  const std::string conflict = op.value("conflict", "fail");
  if (conflict != "fail" && conflict != "replace" && conflict != "rename")
    fail(Errc::bad_request, "invalidRequest", "@microsoft.graph.conflictBehavior must be fail, replace or rename.");
  if (conflict == "fail" && child_named(d, parent, name))
    fail(Errc::conflict, "nameAlreadyExists", "The specified item name already exists.");
}

json apply_drive_write(Tenant& t, const json& op) {
  check_drive_write(t, op);
  const std::string kind = op.value("kind", "");
  auto& d = drive(t, op.value("drive", 0u));
  const std::int64_t now = op.value("now", kBaseEpoch);
  const std::string conflict = op.value("conflict", "fail");
  const std::int64_t fs_created = op.value("fs_created", std::int64_t{0}), fs_modified = op.value("fs_modified", std::int64_t{0});

  // New content for an existing file (addressed by id, or replaced by name): same id.
  auto rewrite = [&](std::uint32_t i) -> json {
    auto& e = d.items[i];
    e.blob = supplied_blob(op);
    ++e.content_version;
    ++e.version;
    e.modified = now;
    if (fs_created) e.fs_created = fs_created;
    if (fs_modified) e.fs_modified = fs_modified;
    e.seq = ++d.seq;
    return {{"index", i}, {"status", 200}};
  };
  if (kind == "drive_put_file" && op.contains("item")) return rewrite(op["item"].get<std::uint32_t>());

  const auto parent = op.value("parent", 0u);
  std::string name = op.value("name", "");
  const bool want_folder = kind == "drive_create_folder";
  if (auto taken = child_named(d, parent, name)) {
    auto& old = d.items[*taken];
    if (conflict == "rename") {
      name = free_name(d, parent, name, want_folder);
    } else if (want_folder && old.folder) {
      // Observed: replacing a folder answers 200 with the existing folder, content kept.
      if (fs_created) old.fs_created = fs_created;
      if (fs_modified) old.fs_modified = fs_modified;
      return {{"index", *taken}, {"status", 200}};
    } else if (!want_folder && !old.folder && !old.package) {
      return rewrite(*taken);
    } else {
      remove_drive_item(d, *taken, now);  // a file replaces a folder and the other way round
    }
  }

  DriveEntry e;
  e.parent = static_cast<std::int32_t>(parent);
  e.folder = want_folder;
  e.name = name;
  e.created = e.modified = now;
  e.fs_created = fs_created;
  e.fs_modified = fs_modified;
  if (!want_folder) e.blob = supplied_blob(op);
  e.seq = ++d.seq;
  d.items.push_back(std::move(e));
  return {{"index", d.items.size() - 1}, {"status", 201}};
}

}  // namespace m365vault::emulator
