// The selection's JSON: every field parsed and written back, every mistake
// refused with the field named.
#include <catch2/catch.hpp>

#include "m365vault/core/error.hpp"
#include "m365vault/restore/selection.hpp"

using namespace m365vault;
using m365vault::restore::Selection;
using json = nlohmann::json;

namespace {
std::string refusal(const json& j) {
  try {
    Selection::from_json(j);
  } catch (const Error& e) {
    CHECK(e.code() == Errc::bad_request);
    return e.what();
  }
  FAIL("accepted: " << j.dump());
  return "";
}
}  // namespace

TEST_CASE("selection: every field round-trips through JSON", "[unit]") {
  json j = {{"tenant", "contoso"},
            {"at", "2026-11-29T08:00:00Z"},
            {"owners", {"adele@contoso.com", "9a0c3e4e-1111-4222-8333-444455556666"}},
            {"categories", {"mail", "onedrive"}},
            {"items", {"12", "13"}},
            {"containers", {"5"}},
            {"query", "invoice -draft"}};
  auto s = Selection::from_json(j);
  CHECK(s.tenant == "contoso");
  CHECK(s.at == std::optional<std::string>("2026-11-29T08:00:00Z"));
  CHECK(s.owners.size() == 2);
  CHECK(s.categories == std::vector<storage::Category>{storage::Category::mail, storage::Category::onedrive});
  CHECK(s.items == std::vector<std::string>{"12", "13"});
  CHECK(s.containers == std::vector<std::string>{"5"});
  CHECK(s.query == std::optional<std::string>("invoice -draft"));
  CHECK(s.to_json() == j);
  CHECK(Selection::from_json(s.to_json()) == s);

  // Repeated entries count once; at and query may be null (now, no filter).
  auto d = Selection::from_json({{"tenant", "t"}, {"items", {"1", "1"}}, {"at", nullptr}, {"query", nullptr}});
  CHECK(d.items == std::vector<std::string>{"1"});
  CHECK_FALSE(d.at);
  CHECK_FALSE(d.query);
}

TEST_CASE("selection: bad input is refused naming the field", "[unit]") {
  CHECK_THAT(refusal({{"tenant", "t"}, {"owners", {"a"}}, {"itemz", {"1"}}}),
             Catch::Contains("field 'selection.itemz'") && Catch::Contains("unknown"));
  CHECK_THAT(refusal({{"owners", {"a"}}}), Catch::Contains("field 'selection.tenant': required"));
  CHECK_THAT(refusal({{"tenant", "t"}}), Catch::Contains("selects nothing"));
  CHECK_THAT(refusal({{"tenant", "t"}, {"items", {"1", "x2"}}}),
             Catch::Contains("field 'selection.items[1]'") && Catch::Contains("'x2' is not a catalog id"));
  CHECK_THAT(refusal({{"tenant", "t"}, {"containers", "5"}}), Catch::Contains("field 'selection.containers'"));
  CHECK_THAT(refusal({{"tenant", "t"}, {"categories", {"mail", "fax"}}}),
             Catch::Contains("field 'selection.categories[1]'") && Catch::Contains("'fax' is not a category"));
  CHECK_THAT(refusal({{"tenant", 7}, {"owners", {"a"}}}), Catch::Contains("field 'selection.tenant': must be a string"));
  CHECK_THAT(refusal({{"tenant", "t"}, {"owners", {""}}}), Catch::Contains("field 'selection.owners[0]'"));
  CHECK_THAT(refusal({{"tenant", "t"}, {"owners", {"a"}}, {"query", std::string(1001, 'x')}}),
             Catch::Contains("field 'selection.query'"));
  CHECK_THAT(refusal(json::array()), Catch::Contains("field 'selection': must be an object"));
  // Inside a larger request the prefix is the caller's.
  CHECK_THROWS_WITH(Selection::from_json({{"tenant", "t"}}, "request.selection"),
                    Catch::Contains("field 'request.selection'"));
}
