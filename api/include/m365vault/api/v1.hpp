#pragma once
// The authenticated REST API under /api/v1 (see openapi.yaml): tokens, audit,
// jobs and runs, tenants and owners, snapshots, browse, items, search and exports. Every call needs `Authorization: Bearer <token>` and a role
// allowed for the route; every change and every refusal is written to the
// audit log; a tenant-restricted token sees only its tenant's objects.
#include <spdlog/logger.h>

#include <chrono>
#include <memory>

#include "m365vault/net/router.hpp"
#include "m365vault/api/content.hpp"
#include "m365vault/scheduler/queue.hpp"
#include "m365vault/storage/pg.hpp"
#include "m365vault/storage/sealer.hpp"

namespace m365vault::exporting {
class ContentSource;
}

namespace m365vault::api {

struct ApiOptions {
  storage::Database* db = nullptr;
  scheduler::Queue queue;
  std::shared_ptr<spdlog::logger> log;
  // Seals tenant credentials on registration (the repository key). Not owned;
  // when null, registering or re-keying a tenant answers 503.
  storage::SecretSealer* sealer = nullptr;
  // Reads item content from the repository. Not owned; when null, content
  // downloads answer 503.
  ContentReader* content = nullptr;
  // The same repository content for export downloads. Not owned; when null,
  // downloads answer 503.
  exporting::ContentSource* export_content = nullptr;
  // Authentication failures one address may make per minute before its
  // requests get 429 for the rest of that minute.
  int auth_failures_per_minute = 20;
};

void add_v1_routes(net::Router& router, ApiOptions opts);

}  // namespace m365vault::api
