#include <catch2/catch.hpp>

#include "m365vault/scheduler/progress.hpp"

using namespace m365vault::scheduler;
using namespace std::chrono_literals;

TEST_CASE("progress counts, rate over the window and an eta only once an owner is done", "[unit]") {
  const auto t0 = ProgressTracker::clock::time_point{} + 1000s;
  ProgressTracker p(t0);
  p.set_owners_total(4);
  auto j = p.snapshot(t0 + 10s);
  CHECK(j["owners_total"] == 4);
  CHECK_FALSE(j.contains("eta_s"));  // nothing done: no guess
  CHECK(j["items_per_s"] == 0.0);

  for (int i = 0; i < 100; ++i) p.item_new(1000);
  p.item_changed(500);
  p.item_deleted();
  p.item_faulted();
  p.bytes_read(200'000);
  p.owner_done();
  j = p.snapshot(t0 + 20s);
  CHECK(j["items_new"] == 100);
  CHECK(j["items_changed"] == 1);
  CHECK(j["items_deleted"] == 1);
  CHECK(j["items_faulted"] == 1);
  CHECK(j["bytes_new"] == 100'500);
  CHECK(j["elapsed_s"] == 20);
  // 102 items in the 10 s since the previous sample.
  CHECK(j["items_per_s"].get<double>() == Approx(10.2));
  CHECK(j["bytes_per_s"].get<double>() == Approx(20'000));
  // 1 of 4 owners in 20 s: 60 s to go.
  CHECK(j["eta_s"] == 60);

  // Old samples leave the window: the rate follows the recent pace.
  j = p.snapshot(t0 + 60s);
  j = p.snapshot(t0 + 100s);
  CHECK(j["items_per_s"].get<double>() == Approx(0.0));
  p.owner_done(), p.owner_done(), p.owner_done();
  CHECK_FALSE(p.snapshot(t0 + 101s).contains("eta_s"));  // finished
}

TEST_CASE("progress renders a bar on a terminal and a plain line elsewhere", "[unit]") {
  nlohmann::json j{{"phase", "mail"}, {"owners_done", 1}, {"owners_total", 4}, {"items_new", 1200},
                   {"items_changed", 34}, {"items_deleted", 2}, {"items_faulted", 1}, {"bytes_read", 12'345'678},
                   {"items_per_s", 812.4}, {"bytes_per_s", 6'100'000}, {"eta_s", 185}};
  auto plain = render_progress("running", j, false);
  CHECK(plain == "running mail  owners 1/4  items 1234 (-2)  faults 1  12.3 MB  812 items/s 6.1 MB/s  eta 3m05s");
  auto bar = render_progress("running", j, true, 200);
  CHECK(bar.rfind("[#####...............]  25% running mail", 0) == 0);
  CHECK(render_progress("running", j, true, 40).size() == 40);
  CHECK(render_progress("queued", nlohmann::json::object(), false) == "queued  owners 0/0  items 0  0 B");
  CHECK(human_bytes(999) == "999 B");
  CHECK(human_bytes(1.5e9) == "1.5 GB");
  CHECK(human_duration(7260) == "2h01m");
}
