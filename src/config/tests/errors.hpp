// For the tests of every part of the configuration: the error text a load gives.
#pragma once

#include <string>
#include <string_view>

#include "config/config.hpp"

namespace pxedust::config::testing {

// What loading `text` with `schema` throws (every error, one per line), or "" when it loads.
inline std::string errorOf(std::string_view text, const Schema& schema, const std::string& source) {
  try {
    loadString(text, source, schema);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace pxedust::config::testing
