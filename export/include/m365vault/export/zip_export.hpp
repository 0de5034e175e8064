#pragma once
// An export as a zip written while it is sent: each item version becomes a file
// under <owner>/<Category>/<folder path>/ (mail as .eml with the stored MIME byte
// for byte, or one mboxrd file per mail folder; contacts as .vcf; events as one
// .ics per calendar; files as themselves; a Teams channel's posts and replies as
// one messages.html and one messages.json, its inline images as themselves: see
// conversation.hpp), and manifest.json, written last, lists
// every file with its size, SHA-256 and the item versions in it, every item that
// could not be exported with the error (faults), and every item that has nothing
// of its own to export, such as a OneNote notebook (skipped), with the reason.
//
// Memory: the bytes of one item at a time for items up to kWholeItemLimit (read
// whole first, so a damaged item is left out cleanly), one chunk for larger ones,
// the events of the calendar being written, the paths of the images of the Teams
// channel being written (its JSON file waits in a temporary file while its HTML
// page is written), and the manifest's faults and skipped items (its file rows
// wait in a temporary file). Not
// thread-safe; one coroutine drives it.
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "m365vault/export/entry_names.hpp"
#include "m365vault/export/formats.hpp"
#include "m365vault/export/zip_stream.hpp"
#include "m365vault/net/http.hpp"
#include "m365vault/storage/catalog.hpp"
#include "m365vault/storage/crypto.hpp"

namespace m365vault::exporting {

class Spool;

// Where the stored bytes of a version come from (the repository, in the daemon).
class ContentSource {
 public:
  virtual ~ContentSource() = default;
  // Writes the version's whole content to `sink`. Throws Error (Errc::storage,
  // Errc::data_corrupt, Errc::not_found) when it cannot.
  virtual boost::asio::awaitable<void> read(const storage::ItemVersion& v, net::BodySink& sink) = 0;
};

struct ExportOptions {
  bool mbox = false;  // one mboxrd file per mail folder instead of .eml files
};

// One item version to export and where it lived at the export's instant.
struct ExportEntry {
  storage::ItemVersion version;
  std::string owner_label;                   // the owner's folder in the zip (UPN, site name...)
  std::optional<std::string> container_path;  // '/'-separated names; nullopt: at the top
};

struct ExportSummary {
  std::uint64_t items = 0, files = 0, faults = 0, skipped = 0;
  std::uint64_t content_bytes = 0;  // bytes of exported files, before compression
  std::uint64_t zip_bytes = 0;      // bytes sent
};

class ZipExport {
 public:
  static constexpr std::uint64_t kWholeItemLimit = 16u << 20;

  ZipExport(ExportOptions opts, net::BodySink& out);
  ~ZipExport();

  // Adds one item. Items of one folder should come together (ordered by owner,
  // category and path): an mbox or .ics is written per run of a folder's items.
  // A Teams channel's items come threaded (exports.cpp's order): its images, then
  // each post followed by its replies; a channel's page is written per run of its
  // messages.
  // An item that cannot be read or converted becomes a fault in the manifest.
  // Throws only when `out` fails (the client went away).
  boost::asio::awaitable<void> add(const ExportEntry& e, ContentSource& source);
  // Writes what is pending, manifest.json (with `about` under "export") and the
  // central directory.
  boost::asio::awaitable<void> finish(const nlohmann::json& about);
  const ExportSummary& summary() const { return summary_; }

 private:
  struct OpenFile;
  struct Conversation;
  class EntrySink;
  friend class EntrySink;

  std::string folder_of(const ExportEntry& e);
  boost::asio::awaitable<void> drain();
  // Into the open file; through the mbox quoter when one is open and `quote`.
  boost::asio::awaitable<void> put(std::string_view bytes, bool quote = true);
  void open_file(const std::string& path, std::int64_t mtime, bool deflate);
  // nullptr: complete; else the file is short and `error` says why.
  boost::asio::awaitable<void> close_file(const std::string* error);
  boost::asio::awaitable<void> close_group();
  boost::asio::awaitable<void> add_whole(const std::string& path, std::int64_t mtime, bool deflate,
                                         std::string_view bytes, const ExportEntry& e);
  boost::asio::awaitable<void> add_message(const ExportEntry& e, const std::string& folder, const std::string& key,
                                           const std::string& stored, std::int64_t mtime);
  void note_image(const std::string& folder, const ExportEntry& e, const std::string& path);
  void fault(const ExportEntry& e, const std::optional<std::string>& path, const std::string& error);
  static nlohmann::json item_ref(const ExportEntry& e);

  ExportOptions opts_;
  net::BodySink& out_;
  ZipStream zip_;
  EntryNames names_;
  std::unique_ptr<OpenFile> file_;
  // The folder whose mbox is open, or whose events wait to become one .ics.
  std::string group_key_;
  std::string group_folder_;
  std::vector<nlohmann::json> group_events_;
  std::vector<nlohmann::json> group_event_refs_;
  std::int64_t group_mtime_ = 0;
  std::unique_ptr<MboxQuoter> quoter_;
  // The Teams channel whose page is being written, and the channel folder's
  // images: hosted content graph id -> path relative to the folder.
  std::unique_ptr<Conversation> conv_;
  std::string images_folder_;
  std::unordered_map<std::string, std::string> images_;
  std::unique_ptr<Spool> files_;  // the manifest's file rows, one line each
  nlohmann::json faults_ = nlohmann::json::array();
  nlohmann::json skipped_ = nlohmann::json::array();
  ExportSummary summary_;
};

}  // namespace m365vault::exporting
