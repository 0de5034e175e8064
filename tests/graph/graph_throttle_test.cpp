// Retry-After in every form, the backoff schedule and the AIMD rate, on a fake clock.
#include <catch2/catch.hpp>

#include <set>

#include "m365vault/graph/client.hpp"
#include "m365vault/graph/throttle.hpp"

using namespace m365vault::graph;
using namespace std::chrono;

TEST_CASE("Retry-After: integer, fractional and HTTP-date forms", "[unit]") {
  const auto now = system_clock::from_time_t(784111747);  // Sun, 06 Nov 1994 08:49:07 GMT
  CHECK(parse_retry_after("120", now) == milliseconds(120000));
  CHECK(parse_retry_after(" 31 ", now) == milliseconds(31000));
  CHECK(parse_retry_after("0", now) == milliseconds(0));
  CHECK(parse_retry_after("2.128", now) == milliseconds(2128));
  CHECK(parse_retry_after("0.5", now) == milliseconds(500));
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == milliseconds(30000));
  CHECK(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now) == milliseconds(30000));
  CHECK(parse_retry_after("Sun Nov  6 08:49:37 1994", now) == milliseconds(30000));
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:48:00 GMT", now) == milliseconds(0));  // already past
  CHECK_FALSE(parse_retry_after("", now));
  CHECK_FALSE(parse_retry_after("soon", now));
  CHECK_FALSE(parse_retry_after("-5", now));
  CHECK_FALSE(parse_retry_after("5s", now));
  CHECK_FALSE(parse_retry_after("Sun, 06 Nov 1994 08:49:37", now));
}

TEST_CASE("backoff grows exponentially with jitter and stays under the cap", "[unit]") {
  BackoffPolicy b{milliseconds(400), milliseconds(10000)};
  for (int i = 0; i < 50; ++i) {
    auto d0 = b.delay(0), d3 = b.delay(3), d30 = b.delay(30);
    CHECK((d0 >= milliseconds(200) && d0 <= milliseconds(400)));
    CHECK((d3 >= milliseconds(1600) && d3 <= milliseconds(3200)));
    CHECK((d30 >= milliseconds(5000) && d30 <= milliseconds(10000)));
  }
  std::set<long> distinct;
  for (int i = 0; i < 20; ++i) distinct.insert(b.delay(2).count());
  CHECK(distinct.size() > 5);  // jittered, not in lock step
}

TEST_CASE("AIMD: halves on a 429 once per cooldown, climbs linearly after, paces 1/rate apart", "[unit]") {
  AimdOptions o;
  o.initial_rate = 100;
  o.min_rate = 1;
  o.max_rate = 200;
  o.decrease_factor = 0.5;
  o.increase_per_second = 10;
  o.cooldown = milliseconds(1000);
  const auto t0 = steady_clock::time_point{} + hours(1);
  AimdRate r(o, t0);
  CHECK(r.rate(t0) == Approx(100));
  CHECK(r.rate(t0 + seconds(5)) == Approx(150));
  r.on_throttled(t0);
  CHECK(r.rate(t0) == Approx(50));
  r.on_throttled(t0 + milliseconds(300));  // same burst: no second cut
  CHECK(r.rate(t0 + milliseconds(300)) == Approx(53));
  CHECK(r.cuts() == 1);
  r.on_throttled(t0 + milliseconds(1500));
  CHECK(r.rate(t0 + milliseconds(1500)) == Approx((50 + 15) * 0.5));
  CHECK(r.rate(t0 + seconds(100)) == Approx(200));  // climbs back, capped

  AimdOptions flat = o;
  flat.increase_per_second = 0;
  AimdRate f(flat, t0);
  for (int i = 0; i < 10; ++i) f.on_throttled(t0 + seconds(2 * i));
  CHECK(f.rate(t0 + seconds(20)) == Approx(1));  // floor
  CHECK(f.cuts() == 10);

  AimdRate p(o, t0);
  p.on_throttled(t0);  // 50/s: 20 ms apart
  auto a = p.pace(t0), b = p.pace(t0), c = p.pace(t0);
  CHECK(a == t0);
  CHECK(duration_cast<milliseconds>(b - a).count() == 20);
  CHECK(duration_cast<milliseconds>(c - b).count() == 20);
  // Unused slots are not saved up.
  CHECK(p.pace(t0 + seconds(10)) == t0 + seconds(10));
}

TEST_CASE("the mailbox of an Outlook path or link", "[unit]") {
  CHECK(outlook_mailbox_of("/users/ABC-1/mailFolders/inbox/messages/delta") == "abc-1");
  CHECK(outlook_mailbox_of("/v1.0/users/u1/messages/m1/$value") == "u1");
  CHECK(outlook_mailbox_of("https://127.0.0.1:4443/v1.0/users/u1/mailFolders/x/messages/delta?$skiptoken=a/b") == "u1");
  CHECK(outlook_mailbox_of("https://graph.microsoft.com/v1.0/users('U2')/mailfolders('AQMk')/messages/delta?$deltatoken=x") == "u2");
  CHECK(outlook_mailbox_of("/beta/users/u3/calendars/c/events/delta") == "u3");
  CHECK(outlook_mailbox_of("/users/a%40contoso.com/contactFolders/delta") == "a@contoso.com");
  CHECK(outlook_mailbox_of("/users/u4/calendarView/delta?startDateTime=x") == "u4");
  CHECK(outlook_mailbox_of("/me/mailFolders") == "me");
  CHECK(outlook_mailbox_of("/users/u5/drive/root/delta").empty());
  CHECK(outlook_mailbox_of("/users/u5").empty());
  CHECK(outlook_mailbox_of("/users/delta?$select=id").empty());
  CHECK(outlook_mailbox_of("/groups/g/members").empty());
}

TEST_CASE("the Teams per-app limit of a path or link", "[unit]") {
  auto route = [](std::string_view p) {
    auto r = teams_route_of(p);
    return r ? r->rate_class + " " + r->scope : std::string("none");
  };
  CHECK(route("/v1.0/chats/19:a_b@unq.gbl.spaces/messages?$top=50") == "chat_message ");
  CHECK(route("https://graph.example/v1.0/chats/19:x@thread.v2/messages?$top=50&$skiptoken=abc") == "chat_message ");
  CHECK(route("/v1.0/chats/19:x@thread.v2/messages/171/hostedContents/aWQ=/$value") == "chat_message ");
  CHECK(route("/v1.0/chats/19:x@thread.v2/members") == "other ");
  CHECK(route("/v1.0/users/u1/chats?$expand=members") == "other ");
  CHECK(route("/v1.0/users/u1/joinedTeams") == "other ");
  CHECK(route("/v1.0/users/u1/chats/getAllMessages") == "get_all_messages ");
  CHECK(route("/v1.0/teams/T1") == "team_channel team:t1");
  CHECK(route("/v1.0/teams/T1/members") == "other team:t1");
  CHECK(route("/v1.0/teams/T1/channels") == "channels_list team:t1");
  CHECK(route("/v1.0/teams/T1/channels/19:C@thread.tacv2") == "team_channel channel:19:c@thread.tacv2");
  CHECK(route("/v1.0/teams/T1/channels/19:C@thread.tacv2/messages/delta?$top=50") ==
        "channel_message channel:19:c@thread.tacv2");
  CHECK(route("/beta/teams/T1/channels/C/messages/1/replies") == "channel_message channel:c");
  CHECK(route("/v1.0/users/u1/mailFolders/inbox/messages") == "none");
  CHECK(route("/v1.0/groups/g/members") == "none");
  CHECK(route("/v1.0/drives/d/root/delta") == "none");
}
