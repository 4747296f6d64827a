// The TOML reader every part of the configuration is parsed with: the daemon's own sections, the
// hosts and groups here, each service's section and host keys in src/<service>/config.cpp.
//
// Every error in the file is reported, not only the first: Table::fail records a message naming
// file:line:column and the qualified key, then ends the table it is in (throws TableFailed, caught by
// guarded() at the table's boundary: a section, one [[host]], one [[group]], one [[dhcp.subnet]]);
// loading goes on with the next table, and the load fails at the end with every error, one per line
// in the order of the file.
// Unknown keys are errors: finish() reports each key of the table that no parser asked for.
#pragma once

#include <asio/ip/address_v4.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "config/config.hpp"

namespace pxedust::config {

struct Errors {
  struct Message {
    std::uint32_t line = 0, column = 0;  // 0: the file as a whole
    std::string text;                   // "file:line:column: key: what"
  };
  std::vector<Message> messages;
  // Every message, in the order of the file, one per line.
  [[nodiscard]] std::string joined() const;
};
struct TableFailed {};  // thrown by Table::fail after recording; caught at the table's boundary

// Runs the load of one table; a failure in it is already recorded.
template <typename F>
void guarded(F&& load) {
  try {
    load();
  } catch (const TableFailed&) {
  }
}

// One TOML table, remembering which keys were consumed so that finish() can reject the rest. Several
// parsers may read one table (a [[host]] has keys of the host model and of several services): each
// asks for its keys through the same Table, and finish() runs once all have.
class Table {
 public:
  Table(const toml::table& table, std::string name, const std::string& file, Errors& errors)
      : table_(table), name_(std::move(name)), file_(file), errors_(errors) {}
  // A table inside this one (an array of tables' entry), reporting to the same list.
  [[nodiscard]] Table child(const toml::table& table, std::string name) const {
    return Table(table, std::move(name), file_, errors_);
  }

  const toml::node* get(std::string_view key);
  [[noreturn]] void fail(const toml::node* at, std::string_view key, std::string_view what) const;
  [[nodiscard]] std::string qualified(std::string_view key) const;  // "dhcp.subnet.pools"

  std::optional<std::string> string(std::string_view key);
  std::string requiredString(std::string_view key);
  std::optional<bool> boolean(std::string_view key);
  template <typename T>
  std::optional<T> integer(std::string_view key, std::int64_t lo, std::int64_t hi) {
    auto v = integerIn(key, lo, hi);
    if (!v) return std::nullopt;
    return static_cast<T>(*v);
  }
  std::optional<double> number(std::string_view key, double lo, double hi);
  std::optional<std::chrono::milliseconds> seconds(std::string_view key, double lo, double hi);
  const toml::array* array(std::string_view key);
  const toml::table* subtable(std::string_view key, std::string_view example);

  // Every key present must have been asked for; each one that was not is an error. `hint` is added
  // to the message (the top level lists the sections there are).
  void finish(std::string_view hint = {}) const;

  static std::string_view typeName(const toml::node& n);
  [[nodiscard]] const toml::table& table() const { return table_; }
  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  std::optional<std::int64_t> integerIn(std::string_view key, std::int64_t lo, std::int64_t hi);

  const toml::table& table_;
  std::string name_;
  const std::string& file_;
  Errors& errors_;
  std::set<std::string, std::less<>> used_;
};

// Values several parts of the configuration share.
std::optional<asio::ip::address_v4> parseV4(std::string_view text);
// An IPv4 network "10.0.0.0/24" or an address (a /32); host bits set is an error (a typo, not a network).
std::optional<Ipv4Network> parseNetwork(std::string_view text);
std::optional<asio::ip::address_v4> ipv4(Table& t, std::string_view key);
// A list of IPv4 addresses: ["10.0.0.1", "10.0.0.2"] or one string.
std::optional<std::vector<asio::ip::address_v4>> ipv4List(Table& t, std::string_view key);
std::optional<std::vector<std::string>> stringList(Table& t, std::string_view key, std::string_view example);
// `listen = [...]`: addresses to bind, none listed twice; `defaultPort` when a text has none, and
// 0.0.0.0:defaultPort when the key is absent.
std::vector<SocketAddress> listenAddresses(Table& t, std::string_view key, std::uint16_t defaultPort);
// A CHAP user name and secret (RFC 7143 section 9.2.1: secrets of at least 96 bits, 12..255 bytes).
std::optional<ChapCredentials> chapPair(Table& t, std::string_view userKey, std::string_view secretKey,
                                        std::string_view defaultUser);
// A host name label: letters, digits and '-', at most 63, not starting or ending with '-'.
bool isHostLabel(std::string_view s);

}  // namespace pxedust::config
