#pragma once
// The authenticated REST API under /api/v1 (see openapi.yaml): tokens, audit,
// jobs and runs. Every call needs `Authorization: Bearer <token>` and a role
// allowed for the route; every change and every refusal is written to the
// audit log; a tenant-restricted token sees only its tenant's objects.
#include <spdlog/logger.h>

#include <chrono>
#include <memory>

#include "m365vault/net/router.hpp"
#include "m365vault/scheduler/queue.hpp"
#include "m365vault/storage/pg.hpp"

namespace m365vault::api {

struct ApiOptions {
  storage::Database* db = nullptr;
  scheduler::Queue queue;
  std::shared_ptr<spdlog::logger> log;
  // Authentication failures one address may make per minute before its
  // requests get 429 for the rest of that minute.
  int auth_failures_per_minute = 20;
};

void add_v1_routes(net::Router& router, ApiOptions opts);

}  // namespace m365vault::api
