#include "cli/status_command.hpp"

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <fmt/format.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace pxedust::cli {
namespace {

using Clock = std::chrono::system_clock;
using nlohmann::json;

// As the storage commands do: the reason on stderr, exit status 1 through CLI11.
[[noreturn]] void fail(const std::string& why) {
  fmt::print(stderr, "pxedust: {}\n", why);
  throw CLI::RuntimeError(1);
}

// "http://host[:port][/]" -> host, port.
std::pair<std::string, std::string> splitUrl(const std::string& url) {
  std::string rest = url;
  if (rest.starts_with("http://")) rest = rest.substr(7);
  else if (rest.find("://") != std::string::npos) fail(url + ": only http:// URLs are served by pxedust");
  rest = rest.substr(0, rest.find('/'));
  if (rest.starts_with('[')) {  // [v6]:port
    const auto close = rest.find(']');
    if (close == std::string::npos) fail(url + ": unclosed '['");
    std::string host = rest.substr(1, close - 1);
    std::string port = close + 2 <= rest.size() && rest[close + 1] == ':' ? rest.substr(close + 2) : "80";
    return {host, port};
  }
  const auto colon = rest.find(':');
  if (colon == std::string::npos) return {rest, "80"};
  return {rest.substr(0, colon), rest.substr(colon + 1)};
}

// One GET over a fresh connection, the body of a 200 answer.
std::string httpGet(const std::string& url, const std::string& path) {
  auto answer = apiRequest(url, "GET", path);
  if (!answer) fail(fmt::format("cannot reach the daemon's API at {}", url));
  if (answer->status != 200) fail(fmt::format("{}{}: {} {}", url, path, answer->status, answer->body));
  return answer->body;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(fmt::format("cannot read {}: is the daemon running with this state directory?", path));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

json fetch(const ApiSource& source, const std::string& what) {
  const std::string text = source.url.empty() ? readFile(source.stateDir + "/" + what + ".json")
                                              : httpGet(source.url, "/api/v1/" + what);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(fmt::format("the daemon's {} is not a JSON object", what));
  return j;
}

std::string text(const json& j, const char* key, const char* none = "-") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return none;
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// Columns padded to their widest cell.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i)
      line += i + 1 == r.size() ? r[i] : fmt::format("{:<{}}  ", r[i], width[i]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

// What a host's row says after its stage: the failure, else the disk, else the last file.
std::string detail(const json& h) {
  if (text(h, "stage") == "failed") return text(h, "failure");
  if (const auto d = h.find("disk"); d != h.end() && d->is_object())
    return fmt::format("{} {} ({} sessions)", text(*d, "protocol"), text(*d, "state"), text(*d, "sessions"));
  return text(h, "last_file", "");
}

}  // namespace

std::optional<ApiAnswer> apiRequest(const std::string& url, std::string_view method, const std::string& path,
                                    const std::string& body, const std::string& token) {
  const auto [host, port] = splitUrl(url);
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  std::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(host, port, ec);
  if (!ec) asio::connect(socket, endpoints, ec);
  if (ec) return std::nullopt;
  // An action (an overlay reset with force) may wait for sessions to end: give it time.
  const timeval timeout{60, 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string request = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n",
                                    method, path, host);
  if (!token.empty()) request += fmt::format("Authorization: Bearer {}\r\n", token);
  if (!body.empty() || method == "POST")
    request += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
  request += "\r\n" + body;
  asio::write(socket, asio::buffer(request), ec);
  std::string response;
  if (!ec) asio::read(socket, asio::dynamic_buffer(response, 256 << 20), ec);
  if (ec && ec != asio::error::eof) fail(fmt::format("{}{}: {}", url, path, ec.message()));
  const auto headEnd = response.find("\r\n\r\n");
  int status = 0;
  if (headEnd == std::string::npos || std::sscanf(response.c_str(), "HTTP/1.%*d %d", &status) != 1)
    fail(fmt::format("{}{}: not an HTTP answer", url, path));
  return ApiAnswer{status, response.substr(headEnd + 4)};
}

std::optional<Clock::time_point> parseRfc3339(const std::string& t) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0, n = 0;
  if (std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &y, &mo, &d, &h, &mi, &s, &ms, &n) != 7 ||
      static_cast<std::size_t>(n) != t.size())
    return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(mo)},
                                         std::chrono::day{static_cast<unsigned>(d)}};
  if (!date.ok()) return std::nullopt;
  return std::chrono::sys_days{date} + std::chrono::hours{h} + std::chrono::minutes{mi} + std::chrono::seconds{s} +
         std::chrono::milliseconds{ms};
}

std::string shortDuration(Clock::duration d) {
  using namespace std::chrono;
  const auto s = std::max<std::int64_t>(0, duration_cast<seconds>(d).count());
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{:02}h", s / 86400, s % 86400 / 3600);
}

std::string statusTable(const json& status, const json& hosts) {
  std::string out = fmt::format("pxedust {} (pid {}): {}\nconfig: {}\n", text(status, "version"), text(status, "pid"),
                                text(status, "state"), text(status, "config"));
  std::vector<std::vector<std::string>> rows{{"SERVICE", "LISTENING ON"}};
  if (const auto s = status.find("services"); s != status.end() && s->is_object())
    for (const auto& [name, svc] : s->items()) {
      std::string where;
      if (const auto e = svc.find("endpoints"); e != svc.end() && e->is_array())
        for (const auto& ep : *e) where += (where.empty() ? "" : ", ") + (ep.is_string() ? ep.get<std::string>() : ep.dump());
      rows.push_back({name, where});
    }
  out += "\n" + table(rows) + "\n";
  if (const auto r = status.find("reloads"); r != status.end() && r->is_object()) {
    out += fmt::format("reloads: {} applied, {} refused", text(*r, "applied"), text(*r, "refused"));
    if (const auto last = text(*r, "last_refusal", ""); !last.empty()) out += " (last: " + last + ")";
    out += "\n";
  }
  std::string stages;
  if (const auto s = hosts.find("stages"); s != hosts.end() && s->is_object())
    for (const char* stage : {"unseen", "dhcp", "address", "boot_program", "boot_files", "root_disk", "up", "failed"})  // boot order
      if (const auto count = s->find(stage); count != s->end() && count->is_number() && count->get<std::int64_t>() > 0)
        stages += fmt::format("{}{} {}", stages.empty() ? "" : ", ", stage, count->get<std::int64_t>());
  out += fmt::format("hosts: {} configured; {}\n", text(status, "hosts"), stages.empty() ? "none seen" : stages);
  return out;
}

std::string hostsTable(const json& hosts, const std::string& stage) {
  const auto now = parseRfc3339(text(hosts, "time", ""));
  std::vector<std::vector<std::string>> rows{{"NAME", "MAC", "IP", "STAGE", "SINCE", "BOOTS", "DETAIL"}};
  if (const auto list = hosts.find("hosts"); list != hosts.end() && list->is_array())
    for (const auto& h : *list) {
      if (!h.is_object() || (!stage.empty() && text(h, "stage") != stage)) continue;
      std::string since = "-";
      if (auto t = parseRfc3339(text(h, "stage_since", "")); t && now) since = shortDuration(*now - *t);
      rows.push_back({text(h, "name"), text(h, "mac"), text(h, "ip"), text(h, "stage"), since, text(h, "boots"), detail(h)});
    }
  return table(rows);
}

void addStatusCommands(CLI::App& app, std::function<ApiSource()> fromConfig) {
  struct Options {
    std::string url, stateDir, stage;
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  auto source = [options, fromConfig] {
    if (!options->url.empty()) return ApiSource{options->url, {}, {}};
    if (!options->stateDir.empty()) return ApiSource{{}, options->stateDir, {}};
    try {
      return fromConfig();
    } catch (const std::exception& e) {  // e.g. the configuration does not parse
      fail(e.what());
    }
  };
  auto common = [options](CLI::App* cmd) {
    cmd->add_option("--url", options->url, "The daemon's HTTP API, e.g. http://10.0.0.1:8080");
    cmd->add_option("--state-dir", options->stateDir, "Read the state files in DIR instead of the API");
    cmd->add_flag("--json", options->json, "Print the API's JSON instead of a table");
  };
  auto* status = app.add_subcommand("status", "What the running daemon serves, and its hosts by boot stage");
  common(status);
  status->callback([options, source] {
    const auto from = source();
    const json s = fetch(from, from.url.empty() ? "daemon" : "status");
    const json h = fetch(from, "hosts");
    if (options->json) {
      json both = {{"status", s}, {"stages", h.value("stages", json::object())}};
      fmt::print("{}\n", both.dump(2));
    } else {
      fmt::print("{}", statusTable(s, h));
    }
  });
  auto* hostsCmd = app.add_subcommand("hosts", "Every host's boot stage, since when, and what it last did");
  common(hostsCmd);
  hostsCmd->add_option("--stage", options->stage, "Only hosts at this stage (unseen, dhcp, address, boot_program, boot_files, root_disk, up, failed)");
  hostsCmd->callback([options, source] {
    const json h = fetch(source(), "hosts");
    if (options->json) {
      if (!options->stage.empty() && h.contains("hosts") && h["hosts"].is_array()) {
        json only = h;
        only["hosts"] = json::array();
        for (const auto& x : h["hosts"])
          if (x.is_object() && x.value("stage", "") == options->stage) only["hosts"].push_back(x);
        fmt::print("{}\n", only.dump(1));
      } else {
        fmt::print("{}\n", h.dump(1));
      }
    } else {
      fmt::print("{}", hostsTable(h, options->stage));
    }
  });

  // next-boot: one boot as a member of another group, through the daemon's API (its actions need
  // [http] api_token, read from the config, or from $PXEDUST_API_TOKEN with --url).
  struct NextBootOptions {
    std::string host, group;
    bool cancel = false;
  };
  auto nb = std::make_shared<NextBootOptions>();
  auto* nextBoot = app.add_subcommand("next-boot",
                                      "Boot HOST once as a member of GROUP, then as its own again; --cancel; no HOST: list them");
  nextBoot->add_option("--url", options->url, "The daemon's HTTP API, e.g. http://10.0.0.1:8080");
  nextBoot->add_flag("--json", options->json, "Print the API's JSON");
  nextBoot->add_option("host", nb->host, "The host");
  nextBoot->add_option("group", nb->group, "The group it boots into, once");
  nextBoot->add_flag("--cancel", nb->cancel, "Take HOST's next boot back");
  nextBoot->callback([options, nb, source] {
    auto from = source();
    if (from.url.empty()) fail("next-boot needs the daemon's API: [http] in the configuration, or --url");
    if (!options->url.empty())
      if (const char* t = std::getenv("PXEDUST_API_TOKEN"); t != nullptr) from.token = t;
    if (nb->host.empty()) {
      const json list = fetch(from, "next-boot");
      if (options->json) return fmt::print("{}\n", list.dump(1));
      std::vector<std::vector<std::string>> rows{{"HOST", "GROUP", "OWN GROUP", "STATE", "ARMED", "BOOT STARTED"}};
      if (list.contains("next_boot") && list["next_boot"].is_array())
        for (const auto& e : list["next_boot"])
          rows.push_back({text(e, "host"), text(e, "group"), text(e, "configured_group"), text(e, "state"),
                          text(e, "armed_at"), text(e, "boot_started_at")});
      return fmt::print("{}", table(rows));
    }
    if (nb->cancel == !nb->group.empty()) fail("give GROUP to arm HOST's next boot, or --cancel to take it back");
    const std::string path = "/api/v1/hosts/" + nb->host + "/next-boot";
    auto answer = nb->cancel ? apiRequest(from.url, "DELETE", path, {}, from.token)
                             : apiRequest(from.url, "POST", path, json{{"group", nb->group}}.dump(), from.token);
    if (!answer) fail(fmt::format("cannot reach the daemon's API at {}", from.url));
    const json j = json::parse(answer->body, nullptr, false);
    if (answer->status != 200) {
      const bool said = j.is_object() && j.contains("error") && j["error"].is_string();
      fail(fmt::format("the daemon refused: {}", said ? j["error"].get<std::string>() : fmt::format("HTTP {}", answer->status)));
    }
    if (options->json) return fmt::print("{}\n", j.dump(1));
    if (nb->cancel) return fmt::print("{}: next boot taken back; it boots as its own group\n", nb->host);
    fmt::print("{}: its next boot is as a member of {} ({}), then as its own group ({}) again\n", nb->host,
               text(j, "group"), text(j, "state"), text(j, "configured_group", "none"));
  });
}

}  // namespace pxedust::cli
