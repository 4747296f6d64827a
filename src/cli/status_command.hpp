// `pxedust status` and `pxedust hosts`: what a running daemon says of itself and of each host, as
// tables for people or, with --json, as the API's JSON.
//
//   pxedust status [--url URL | --state-dir DIR] [--json]
//   pxedust hosts  [--url URL | --state-dir DIR] [--json] [--stage STAGE]
//
// Where the answer comes from, the first that applies:
//   --url URL          the daemon's HTTP API at URL (http://host:port): /api/v1/status, /api/v1/hosts
//   --state-dir DIR    the state files the daemon writes there (daemon.json, hosts.json)
//   the configuration  (PXEDUST_CONFIG, default /etc/pxedust/pxedust.toml): its [http] listen address
//                      when it has [http] (0.0.0.0 and :: become loopback), else its [daemon] state_dir
// A daemon that cannot be reached, or an answer that is not what the API documents, is exit status 1
// with the reason on stderr.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace pxedust::cli {

// Where to ask, from the options; `source` gives the configuration's choice when neither is set.
struct ApiSource {
  std::string url;       // "http://127.0.0.1:8080"; empty: read stateDir
  std::string stateDir;
  std::string token;     // [http] api_token, for actions; empty when the config sets none
};

// One request to the daemon's API at `url` over a fresh connection: the status and body of the
// answer; nullopt when nothing answers there (no daemon, or none with HTTP). An answer that is not
// HTTP is exit status 1, as for every command here.
struct ApiAnswer {
  int status = 0;
  std::string body;
};
std::optional<ApiAnswer> apiRequest(const std::string& url, std::string_view method, const std::string& path,
                                    const std::string& body = {}, const std::string& token = {});

void addStatusCommands(CLI::App& app, std::function<ApiSource()> fromConfig);

// The tables, from the API's JSON (/api/v1/status, /api/v1/hosts); pure, for tests.
std::string statusTable(const nlohmann::json& status, const nlohmann::json& hosts);
std::string hostsTable(const nlohmann::json& hosts, const std::string& stage = {});

// "2026-11-22T14:50:52.123Z" -> a time point; nullopt when it is not that shape.
std::optional<std::chrono::system_clock::time_point> parseRfc3339(const std::string& text);
// "45s", "3m12s", "2h05m", "3d04h".
std::string shortDuration(std::chrono::system_clock::duration d);

}  // namespace pxedust::cli
