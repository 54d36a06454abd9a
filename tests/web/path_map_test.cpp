// PathMap: prefixes of a remote process's paths and the editor's, as the daemon applies them.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "path_map.hpp"

using hotd::server::PathMap;

namespace {

PathMap map_of(std::initializer_list<const char*> texts) {
  PathMap map;
  for (const char* text : texts) {
    std::string error;
    auto prefix = PathMap::parse(text, error);
    REQUIRE_MESSAGE(prefix, error);
    map.add(*prefix);
  }
  return map;
}

}  // namespace

TEST_CASE("path map: whole components of the longest prefix, both ways") {
  const PathMap map = map_of({"/app:/home/me/project", "/app/vendor:/home/me/vendor/", "/:/remote-root"});
  CHECK(map.to_local("/app/shop.py") == "/home/me/project/shop.py");
  CHECK(map.to_local("/app") == "/home/me/project");
  CHECK(map.to_local("/app/vendor/lib.py") == "/home/me/vendor/lib.py");
  CHECK(map.to_local("/apple.py") == "/remote-root/apple.py");  // "/app" is not a prefix of "/apple.py"
  CHECK(map.to_remote("/home/me/project/pkg/mod.py") == "/app/pkg/mod.py");
  CHECK(map.to_remote("/home/me/vendor/lib.py") == "/app/vendor/lib.py");
  CHECK(map.to_remote("/remote-root/etc/x.py") == "/etc/x.py");
  CHECK(map.to_remote("/home/me/projects/x.py") == "/home/me/projects/x.py");  // unmapped: unchanged
}

TEST_CASE("path map: an empty map changes nothing, malformed mappings are refused") {
  CHECK(PathMap().to_local("/app/x.py") == "/app/x.py");
  std::string error;
  CHECK_FALSE(PathMap::parse("/app", error));
  CHECK(error.find("REMOTE_PREFIX:LOCAL_PREFIX") != std::string::npos);
  CHECK_FALSE(PathMap::parse("app:/home/me", error));
  CHECK_FALSE(PathMap::parse("/app:", error));
}
