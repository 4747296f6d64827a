// The daemon's pages on the HTTP service: the JSON API, /metrics and the dashboard (README, "API").
//
// Reads are answered from what the loop keeps (status, hosts, sessions) or from work done on the
// state writer thread (the store's images and overlays, the leases' JSON), never from file I/O on
// the loop. Actions take POST with [http] api_token as a bearer token.
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>

#include "blockstore/hash.hpp"
#include "blockstore/store.hpp"
#include "boot/snapshot.hpp"
#include "common/log.hpp"
#include "daemon/daemon.hpp"
#include "daemon/dashboard.hpp"
#include "dhcp/service.hpp"
#include "http/config.hpp"
#include "http/service.hpp"
#include "metrics/registry.hpp"

namespace pxedust::daemon {
namespace {

using nlohmann::json;

http::Reply jsonReply(int status, const json& body, std::vector<std::pair<std::string, std::string>> fields = {}) {
  return http::Reply{status, "application/json", body.dump(1) + "\n", std::move(fields)};
}

http::Reply errorReply(int status, std::string_view why, std::vector<std::pair<std::string, std::string>> fields = {}) {
  return jsonReply(status, json{{"error", why}}, std::move(fields));
}

// API actions: POST only, with [http] api_token as a bearer token in the Authorization header (a
// token in a URL ends up in logs and browser history, so a query string is refused outright). Why
// an action is refused, as the reply to send; nullopt: go ahead.
std::optional<http::Reply> refuseAction(const config::Config& config, const http::wire::Request& request,
                                        bool orDelete = false) {
  const bool allowed = request.method == http::wire::Method::Post || (orDelete && request.method == http::wire::Method::Delete);
  if (!allowed)
    return orDelete ? errorReply(405, "this action takes POST or DELETE", {{"Allow", "POST, DELETE"}})
                    : errorReply(405, "this action takes POST", {{"Allow", "POST"}});
  if (!request.query.empty())
    return errorReply(400, "no query string: the token goes in the Authorization header, never in a URL");
  const auto* web = http::configIn(config);
  if (web == nullptr || !web->apiToken) return errorReply(403, "API actions are off: set [http] api_token to turn them on");
  const auto auth = request.field("authorization");
  if (!auth)
    return errorReply(401, "this action needs \"Authorization: Bearer <[http] api_token>\"",
                      {{"WWW-Authenticate", "Bearer realm=\"pxedust\""}});
  std::string_view given = *auth;
  const bool bearer = given.size() > 7 && (given.substr(0, 7) == "Bearer " || given.substr(0, 7) == "bearer ");
  if (bearer) given.remove_prefix(7);
  // Compared in constant time: how long a wrong guess takes says nothing of the token.
  const std::string& token = *web->apiToken;
  unsigned char diff = given.size() == token.size() ? 0 : 1;
  for (std::size_t i = 0; i < token.size(); ++i)
    diff |= static_cast<unsigned char>(token[i] ^ (i < given.size() ? given[i] : 0));
  if (!bearer || diff != 0) return errorReply(403, "wrong token");
  return std::nullopt;
}

http::Reply methodNotAllowed() {
  return http::Reply{405, "text/plain; charset=utf-8", "405 Method Not Allowed\n", {{"Allow", "GET, HEAD"}}};
}

bool isRead(const http::wire::Request& request) {
  return request.method == http::wire::Method::Get || request.method == http::wire::Method::Head;
}

// As every time in the API is written (boot/snapshot.hpp).
std::string rfc3339(std::int64_t unixSeconds) { return boot::rfc3339(boot::Clock::from_time_t(unixSeconds)); }

json sessionJson(const service::DiskSession& s) {
  return {{"protocol", s.protocol}, {"host", s.host}, {"client", s.client}, {"initiator", s.initiator},
          {"target", s.target}};
}

json imageJson(const blockstore::ImageInfo& i, std::uint64_t latest) {
  return {{"name", i.identity.name},
          {"version", i.identity.version},
          {"latest", i.identity.version == latest},
          {"uuid", blockstore::uuidToString(i.identity.uuid)},
          {"sha256", blockstore::toHex(i.identity.sha256)},
          {"size_bytes", i.identity.size},
          {"allocated_bytes", i.allocatedBytes},
          {"imported", rfc3339(i.importedAt)},
          {"source", i.source}};
}

json overlayJson(const blockstore::OverlayInfo& o, const std::vector<service::DiskSession>& sessions) {
  json j = {{"host", o.host},
            {"image", o.base.name},
            {"version", o.base.version},
            {"latest_version", o.latestVersion ? json(*o.latestVersion) : json(nullptr)},
            {"base_uuid", blockstore::uuidToString(o.base.uuid)},
            {"chunk_size", o.chunkSize},
            {"allocated_bytes", o.allocatedBytes}};
  json list = json::array();
  for (const auto& s : sessions)
    if (s.host == o.host) list.push_back(sessionJson(s));
  j["sessions"] = std::move(list);
  return j;
}

// The body of POST /api/v1/overlays/<host>/reset: {} or any of {"latest": true} / {"version": N},
// {"force": true}.
struct ResetRequest {
  blockstore::ResetOptions options;
  bool force = false;
};

std::variant<ResetRequest, std::string> parseReset(std::string_view body) {
  ResetRequest out;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return out;
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::string("the body must be a JSON object, e.g. {\"latest\": true}");
  for (const auto& [key, value] : j.items()) {
    if (key == "latest" && value.is_boolean()) {
      out.options.latest = value.get<bool>();
    } else if (key == "force" && value.is_boolean()) {
      out.force = value.get<bool>();
    } else if (key == "version" && value.is_number_unsigned() && value.get<std::uint64_t>() > 0) {
      out.options.version = value.get<std::uint64_t>();
    } else {
      return "unknown or ill-typed key \"" + key + "\": expected latest (true/false), version (a number from 1), force (true/false)";
    }
  }
  if (out.options.latest && out.options.version) return std::string("give latest or version, not both");
  return out;
}

// POST /api/v1/hosts/<name>/next-boot's body: {"group": "<name>"}; the group it boots into once.
std::variant<std::string, http::Reply> parseNextBoot(std::string_view body) {
  const json j = json::parse(body, nullptr, false);
  auto bad = [] { return errorReply(400, "the body must be {\"group\": \"<a [[group]] name>\"}"); };
  if (j.is_discarded() || !j.is_object() || j.size() != 1) return bad();
  const auto group = j.find("group");
  if (group == j.end() || !group->is_string() || group->get<std::string>().empty()) return bad();
  return group->get<std::string>();
}

int statusForStoreError(int code) {
  switch (code) {
    case ENOENT: return 404;
    case EBUSY:
    case EAGAIN: return 409;  // EWOULDBLOCK too: another program holds the overlay's lock
    case EINVAL: return 400;
    default: return 500;
  }
}

// A force reset waits this long, at most, for the sessions it ended to let go of the disk.
constexpr int kReleaseTries = 100;
constexpr std::chrono::milliseconds kReleaseRetry{100};

constexpr std::string_view kHostLabel[] = {"host"};
constexpr metrics::Family kOverlayBytes{"pxedust_overlay_allocated_bytes",
                                        "Bytes each host's overlay takes on disk (its data and map files), as of the "
                                        "last listing of the store (each scrape of /metrics lists it).",
                                        metrics::Type::Gauge, kHostLabel};
constexpr std::string_view kImageLabels[] = {"image", "version"};
constexpr metrics::Family kImageBytes{"pxedust_image_allocated_bytes",
                                      "Bytes each base image version takes on disk (sparse where it is zero).",
                                      metrics::Type::Gauge, kImageLabels};

}  // namespace

struct Daemon::StorageListing {
  std::vector<blockstore::ImageInfo> images;
  std::vector<blockstore::OverlayInfo> overlays;
  std::string error;  // the store could not be listed
};

std::shared_ptr<blockstore::Store> Daemon::apiStore() {
  if (runtime_.disks) return runtime_.disks->store();
  if (!apiStore_ || apiStoreDir_ != config_.storage.dir) {
    // No block service runs: the store of [storage] dir, opened for the API alone.
    auto store = blockstore::Store::open(config_.storage.dir);
    if (!store) return nullptr;
    apiStore_ = *store;
    apiStoreDir_ = config_.storage.dir;
  }
  return apiStore_;
}

void Daemon::listStorage(std::function<void()> then) {
  auto store = apiStore();
  asio::post(stateWriter_, [this, store, then = std::move(then)]() mutable {
    auto listing = std::make_shared<StorageListing>();
    if (!store) {
      listing->error = "the store in [storage] dir cannot be opened";
    } else {
      auto images = store->listImages();
      auto overlays = store->listOverlays();
      if (images) listing->images = std::move(*images);
      if (overlays) listing->overlays = std::move(*overlays);
      if (!images) listing->error = images.error().message;
      else if (!overlays) listing->error = overlays.error().message;
    }
    asio::post(loop_.io(), [this, listing = std::move(listing), then = std::move(then)] {
      storage_ = listing;
      then();
    });
  });
}

std::vector<service::DiskSession> Daemon::diskSessions() const {
  std::vector<service::DiskSession> out;
  for (const auto& s : slots_)
    if (s.running)
      for (auto& d : s.running->diskSessions()) out.push_back(std::move(d));
  return out;
}

void Daemon::collectStorage(metrics::Writer& out) const {
  out.declare(kOverlayBytes);
  out.declare(kImageBytes);
  if (!storage_) return;
  for (const auto& o : storage_->overlays) out.sample(kOverlayBytes, {o.host}, o.allocatedBytes);
  for (const auto& i : storage_->images)
    out.sample(kImageBytes, {i.identity.name, std::to_string(i.identity.version)}, i.allocatedBytes);
}

void Daemon::resetOverlay(std::string host, blockstore::ResetOptions options, bool force, http::Respond respond) {
  if (!blockstore::validStoreName(host)) return respond(errorReply(404, "no such overlay: \"" + host + "\" is not a host name"));
  auto sessions = diskSessions();
  std::erase_if(sessions, [&](const service::DiskSession& s) { return s.host != host; });
  if (!sessions.empty() && !force) {
    json list = json::array();
    for (const auto& s : sessions) list.push_back(sessionJson(s));
    return respond(jsonReply(409, {{"error", fmt::format("host '{}' has {} session(s) on its disk; reset it when the host is "
                                                          "off, or with {{\"force\": true}} to end them",
                                                          host, sessions.size())},
                                   {"sessions", list}}));
  }
  PXD_INFO("api.overlay_reset", "host={} force={} sessions_ended={}", log::q(host), force, sessions.size());
  auto disks = runtime_.disks;
  auto finish = [this, host, respond](const Result<blockstore::OverlayInfo>& r, std::size_t ended) {
    if (!r) {
      const int status = statusForStoreError(r.error().code);
      return respond(errorReply(status, status == 409 ? "host '" + host + "' still has its disk open: " + r.error().message
                                                      : r.error().message));
    }
    json body = {{"result", "reset"}, {"sessions_ended", ended}, {"overlay", overlayJson(*r, {})}};
    listStorage([respond, body = std::move(body)] { respond(jsonReply(200, body)); });
  };
  auto store = apiStore();
  if (!disks) {  // no block service: nothing holds the overlay but other programs, which its lock keeps out
    if (!store) return respond(errorReply(500, "the store in [storage] dir cannot be opened"));
    asio::post(stateWriter_, [this, store, host, options, finish] {
      auto r = store->resetOverlay(host, options);
      asio::post(loop_.io(), [r = std::move(r), finish] { finish(r, 0); });
    });
    return;
  }
  // No new session may open the disk from here on; the ones there end, the cached device goes.
  disks->hold(host);
  for (const auto& s : slots_)
    if (s.running) s.running->releaseDisk(host);
  struct Attempt {
    explicit Attempt(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    int tries = 0;
  };
  auto attempt = std::make_shared<Attempt>(loop_.io());
  const std::size_t ended = sessions.size();
  auto tryReset = std::make_shared<std::function<void()>>();
  *tryReset = [this, disks, host, options, finish, attempt, ended, tryReset] {
    asio::post(stateWriter_, [this, disks, host, options, finish, attempt, ended, tryReset] {
      auto r = disks->reset(host, options);
      asio::post(loop_.io(), [disks, host, finish, attempt, ended, tryReset, r = std::move(r)]() mutable {
        // The sessions just ended let go of the disk once their I/O in flight is done: wait for it.
        if (!r && r.error().code == EBUSY && ++attempt->tries < kReleaseTries) {
          attempt->timer.expires_after(kReleaseRetry);
          attempt->timer.async_wait([tryReset](const std::error_code& ec) {
            if (!ec) (*tryReset)();
          });
          return;
        }
        disks->unhold(host);
        *tryReset = nullptr;  // the cycle through the closure ends here
        finish(r, ended);
      });
    });
  };
  (*tryReset)();
}

// /api/v1/hosts serves the text hosts.json was last written with (made off the loop; at most one
// write interval old), so a dashboard polling it costs the loop a copy, not a render.
void Daemon::addRoutes(http::HttpService& web) {
  auto readOnly = [](auto body) {
    return [body = std::move(body)](const http::wire::Request& request, std::string_view) -> http::Reply {
      if (!isRead(request)) return methodNotAllowed();
      return body();
    };
  };
  web.setAsyncRoute("/metrics", [this](const http::wire::Request& request, std::string_view, http::Respond respond) {
    if (!isRead(request)) return respond(methodNotAllowed());
    // The store is listed first (off the loop), so overlay sizes are those of this scrape.
    listStorage([this, respond] {
      respond(http::Reply{200, std::string(metrics::kPrometheusContentType), renderMetrics(), {}});
    });
  });
  web.setRoute("/api/v1/status", readOnly([this] {
                 auto s = daemonState();
                 s["health"] = health();
                 return jsonReply(200, s);
               }));
  web.setRoute("/", readOnly([] { return http::Reply{200, "text/html; charset=utf-8", std::string(dashboardPage()), {}}; }));
  web.setStream("/api/v1/stream", hostsStream_);
  web.setRoute("/api/v1/hosts", readOnly([this] {
                 return http::Reply{200, "application/json", hostsJson_ ? *hostsJson_ : std::string("{}\n"), {}};
               }));
  web.setRoute("/api/v1/sessions", readOnly([this] {
                 json list = json::array();
                 for (const auto& s : diskSessions()) list.push_back(sessionJson(s));
                 return jsonReply(200, {{"sessions", list}});
               }));
  web.setAsyncRoute("/api/v1/images", [this](const http::wire::Request& request, std::string_view, http::Respond respond) {
    if (!isRead(request)) return respond(methodNotAllowed());
    listStorage([this, respond] {
      json list = json::array();
      std::map<std::string, std::uint64_t, std::less<>> latest;
      for (const auto& i : storage_->images) latest[i.identity.name] = std::max(latest[i.identity.name], i.identity.version);
      for (const auto& i : storage_->images) list.push_back(imageJson(i, latest[i.identity.name]));
      json body = {{"images", list}};
      if (!storage_->error.empty()) body["error"] = storage_->error;
      respond(jsonReply(storage_->error.empty() ? 200 : 500, body));
    });
  });
  web.setAsyncRoute("/api/v1/overlays", [this](const http::wire::Request& request, std::string_view, http::Respond respond) {
    if (!isRead(request)) return respond(methodNotAllowed());
    listStorage([this, respond] {
      const auto sessions = diskSessions();
      json list = json::array();
      for (const auto& o : storage_->overlays) list.push_back(overlayJson(o, sessions));
      json body = {{"overlays", list}};
      if (!storage_->error.empty()) body["error"] = storage_->error;
      respond(jsonReply(storage_->error.empty() ? 200 : 500, body));
    });
  });
  // POST /api/v1/overlays/<host>/reset
  web.setPrefixRoute("/api/v1/overlays/", [this](const http::wire::Request& request, std::string_view body,
                                                 http::Respond respond) {
    std::string_view rest = std::string_view(request.path).substr(std::string_view("/api/v1/overlays/").size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos || rest.substr(slash) != "/reset")
      return respond(errorReply(404, "no such API path; overlays have POST /api/v1/overlays/<host>/reset"));
    if (auto refused = refuseAction(config_, request)) return respond(std::move(*refused));
    auto parsed = parseReset(body);
    if (auto* why = std::get_if<std::string>(&parsed)) return respond(errorReply(400, *why));
    const auto& r = std::get<ResetRequest>(parsed);
    resetOverlay(std::string(rest.substr(0, slash)), r.options, r.force, std::move(respond));
  });
  // POST (arm) and DELETE (cancel) /api/v1/hosts/<name>/next-boot; GET /api/v1/next-boot lists them.
  web.setPrefixRoute("/api/v1/hosts/", [this](const http::wire::Request& request, std::string_view body,
                                              http::Respond respond) {
    std::string_view rest = std::string_view(request.path).substr(std::string_view("/api/v1/hosts/").size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos || rest.substr(slash) != "/next-boot")
      return respond(errorReply(404, "no such API path; a host has POST or DELETE /api/v1/hosts/<name>/next-boot"));
    if (auto refused = refuseAction(config_, request, true)) return respond(std::move(*refused));
    std::optional<std::string> group;
    if (request.method == http::wire::Method::Post) {
      auto parsed = parseNextBoot(body);
      if (auto* reply = std::get_if<http::Reply>(&parsed)) return respond(std::move(*reply));
      group = std::get<std::string>(parsed);
    }
    changeNextBoot(std::string(rest.substr(0, slash)), group,
                   [respond](int status, const json& answer) { respond(jsonReply(status, answer)); });
  });
  web.setRoute("/api/v1/next-boot", readOnly([this] {
                 json list = json::array();
                 for (const auto& [host, e] : nextBoot_.entries()) list.push_back(nextBootJson(host, e));
                 return jsonReply(200, {{"next_boot", list}});
               }));
  web.setAsyncRoute("/api/v1/leases", [this](const http::wire::Request& request, std::string_view, http::Respond respond) {
    if (!isRead(request)) return respond(methodNotAllowed());
    const auto* service = dhcp();
    const auto* db = service ? service->leases() : nullptr;
    if (db == nullptr) return respond(jsonReply(200, {{"leases", json::array()}}));
    // Copied on the loop (a plain copy), made into JSON on the state writer.
    auto leases = std::make_shared<std::vector<dhcp::Lease>>();
    db->forEach([&](const dhcp::Lease& l) { leases->push_back(l); });
    const auto now = static_cast<dhcp::UnixTime>(std::time(nullptr));
    asio::post(stateWriter_, [this, leases, now, respond] {
      json list = json::array();
      for (const auto& l : *leases) {
        list.push_back({{"ip", asio::ip::address_v4(l.address).to_string()},
                        {"state", dhcp::leaseStateName(l.stateAt(now))},
                        {"kind", l.kind == dhcp::LeaseKind::Static ? "static" : "dynamic"},
                        {"mac", l.mac.toString()},
                        {"client", l.client.toString()},
                        {"hostname", l.hostname},
                        {"subnet_id", l.subnetId},
                        {"start", rfc3339(l.start)},
                        {"expiry", rfc3339(l.expiry)}});
      }
      auto reply = jsonReply(200, {{"leases", std::move(list)}});
      asio::post(loop_.io(), [respond, reply = std::move(reply)]() mutable { respond(std::move(reply)); });
    });
  });
  // POST /api/v1/reload: what SIGHUP does, answered with its outcome.
  web.setRoute("/api/v1/reload", [this](const http::wire::Request& request, std::string_view) {
    if (auto refused = refuseAction(config_, request)) return *refused;
    const auto refusedBefore = reloadsRefused_;
    PXD_INFO("api.reload", "from=api");
    reload();
    if (reloadsRefused_ != refusedBefore) return jsonReply(422, {{"result", "refused"}, {"error", lastRefusal_}});
    return jsonReply(200, {{"result", "applied"}, {"hosts", config_.hosts.size()}});
  });
}

}  // namespace pxedust::daemon
