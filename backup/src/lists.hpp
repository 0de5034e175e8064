#pragma once
// SharePoint lists into the repository (category sharepoint; the owner is the
// site, of kind site). Document libraries are drives (drive.cpp) and are left
// out here. CONTRACT.md 8.3.
//
// Each list is a container, listed each run, holding an item of kind "list" with
// the list's JSON (template, columns as Graph gives them). Its items follow the
// list-item delta from the saved cursor; each is an item of kind "list_item"
// whose content is the listItem's Graph JSON with its `fields`, and whose graph id
// is "{list id}/{item id}" (item ids are only unique within their list). An item
// the delta reports as removed closes its stored version; an expired delta token
// starts a resync round that closes what the completed round no longer reports.
#include <boost/asio/awaitable.hpp>

#include "drive.hpp"

namespace m365vault::backup {

// The lists of `site` in its snapshot (site, sharepoint). Throws GraphError /
// Error when the pass fails (the caller records it against the site).
boost::asio::awaitable<void> backup_site_lists(DriveEnv& env, const storage::Owner& site);

}  // namespace m365vault::backup
