// The `pxedust image|overlay` subcommands, driven through CLI11 exactly as main() parses them.
#include <gtest/gtest.h>

#include "blockstore/store.hpp"
#include "blockstore/tests/test_util.hpp"
#include "cli/storage_commands.hpp"

namespace pxedust::cli {
namespace {

namespace bs = pxedust::blockstore;

class StorageCli : public ::testing::Test {
 protected:
  // Parses like CLI11_PARSE; returns the exit status.
  int run(std::vector<std::string> args) {
    CLI::App app{"test", "pxedust"};
    app.require_subcommand(1);
    addStorageCommands(app, [this] { return (dir_ / "store").string(); });
    std::vector<const char*> argv = {"pxedust"};
    for (auto& a : args) argv.push_back(a.c_str());
    try {
      app.parse(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
    } catch (const CLI::ParseError& e) {
      return e.get_exit_code();
    }
    return 0;
  }
  bs::testing::TempDir dir_;
};

TEST_F(StorageCli, ImportCreateResetDeleteRoundTrip) {
  bs::testing::writeWhole(dir_ / "a.img", bs::testing::randomBytes(1 << 20, 1));
  EXPECT_EQ(run({"image", "import", (dir_ / "a.img").string(), "--name", "deb"}), 0);
  EXPECT_EQ(run({"image", "import", (dir_ / "a.img").string(), "-n", "deb", "-q"}), 0);
  EXPECT_EQ(run({"image", "list"}), 0);
  EXPECT_EQ(run({"image", "verify", "deb", "--version", "1"}), 0);
  EXPECT_EQ(run({"overlay", "create", "h1", "--image", "deb", "--version", "1"}), 0);
  EXPECT_EQ(run({"overlay", "list"}), 0);
  EXPECT_EQ(run({"overlay", "reset", "h1", "--latest"}), 0);
  auto store = bs::Store::open(dir_ / "store");
  ASSERT_TRUE(store);
  EXPECT_EQ((*store)->overlayInfo("h1")->base.version, 2U);
  EXPECT_EQ(run({"overlay", "reset", "h1", "--version", "1"}), 0);
  EXPECT_EQ((*store)->overlayInfo("h1")->base.version, 1U);
  EXPECT_EQ(run({"overlay", "delete", "h1"}), 0);
  EXPECT_FALSE((*store)->overlayInfo("h1"));
}

TEST_F(StorageCli, ErrorsExitNonZero) {
  EXPECT_EQ(run({"image", "import", (dir_ / "missing.img").string(), "--name", "x"}), 1);
  EXPECT_EQ(run({"image", "import", (dir_ / "missing.img").string()}), static_cast<int>(CLI::ExitCodes::RequiredError));
  EXPECT_EQ(run({"overlay", "reset", "nobody"}), 1);
  EXPECT_EQ(run({"overlay", "delete", "../etc"}), 1);
  EXPECT_EQ(run({"overlay", "create", "h", "--image", "nope"}), 1);
  EXPECT_NE(run({"overlay", "reset", "h", "--latest", "--version", "2"}), 0);
  EXPECT_EQ(run({"image", "list", "--store", (dir_ / "other").string()}), 0);
}

}  // namespace
}  // namespace pxedust::cli
