#pragma once
// Drives into the repository: a user's OneDrive (category onedrive, the user is
// the owner) and SharePoint document libraries (category sharepoint; each site is
// an owner of kind site and each of its libraries an owner of kind drive, because
// a drive delta is one scope whose removals and resync rounds span the whole
// drive, and the catalog keeps one such scope per (owner, category)).
//
// A drive pass walks /drives/{id}/root/delta from the saved cursor. Folders are
// containers tracked by item id (delta carries no paths: the catalog keeps the
// tree, so renames and moves are a new container version and nothing else); files
// are items whose change key is the eTag (it moves on renames and moves as well as
// edits). A file is downloaded only when its cTag (content tag) or hash differs
// from the stored version's; otherwise the new version reuses the stored blobs.
// Content streams through /content (its 302 followed without Authorization) into
// the chunker with bounded memory, checked against quickXorHash, or sha256Hash /
// sha1Hash where those are given; a mismatch is downloaded again, twice, then
// recorded as a fault of the item. OneNote packages and remote items are recorded
// as such, without content. A 410 resyncRequired starts a resync round
// (RoundCovers::both) from the Location given: what the round reports with an
// unchanged eTag is only marked seen, what differs is fetched, and the completed
// round closes what it did not report.
#include <boost/asio/awaitable.hpp>

#include <stdexcept>
#include <string>

#include "content.hpp"
#include "m365vault/backup/backup.hpp"
#include "m365vault/core/semaphore.hpp"

namespace m365vault::backup {

// An owner has nothing of this category (a user without a provisioned OneDrive):
// the category is skipped with this reason; the owner's other categories go on.
class CategorySkipped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a drive pass uses of the run; everything outlives the pass.
struct DriveEnv {
  BackupServices& svc;
  scheduler::RunContext& ctx;
  graph::GraphClient& client;
  RepoWriter& writer;
  scheduler::ProgressTracker& progress;
  BackupSummary& summary;
  const storage::Tenant& tenant;
  AsyncSemaphore& downloads;  // file downloads in flight in the run (BackupOptions::downloads_per_run)
};

// The OneDrive of `user`, in its own snapshot (owner, onedrive). Throws
// CategorySkipped when the user has no drive, GraphError / Error when the pass
// fails (the caller records it against the owner).
boost::asio::awaitable<void> backup_onedrive(DriveEnv& env, const storage::Owner& user);

// Every site (search, then subsites) as an owner of kind site, and each of its
// document libraries as an owner of kind drive, backed up by the same drive pass
// in a snapshot (drive owner, sharepoint). `owners`, when not empty, keeps only
// the sites whose id, name or URL it lists. Each of `must_name_site` (selected names
// that are no user, team or chat) that names no site is a problem ("no user or
// site"). A site or library that fails is a problem in the summary
// (owners_failed); authentication failures propagate.
boost::asio::awaitable<void> backup_sharepoint(DriveEnv& env, const std::vector<std::string>& owners,
                                               const std::vector<std::string>& must_name_site);

}  // namespace m365vault::backup
