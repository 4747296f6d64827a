#include "files/files.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace pxedust;
using namespace pxedust::files;
namespace fs = std::filesystem;

TEST(Files, Normalize) {
  EXPECT_EQ(normalizeRequest("/pxelinux.0").path, "pxelinux.0");
  EXPECT_EQ(normalizeRequest("//a//./b/").path, "a/b");
  EXPECT_EQ(normalizeRequest("\\boot\\x64\\wdsnbp.com").path, "boot/x64/wdsnbp.com");
  EXPECT_EQ(normalizeRequest("/etc/passwd").path, "etc/passwd");  // absolute means "from the root"
  EXPECT_TRUE(normalizeRequest("../etc/passwd").error);
  EXPECT_TRUE(normalizeRequest("a/../../b").error);
  EXPECT_TRUE(normalizeRequest("..\\..\\etc\\passwd").error);
  EXPECT_TRUE(normalizeRequest("a\nb").error);
  EXPECT_TRUE(normalizeRequest("/").error);
  EXPECT_TRUE(normalizeRequest(std::string(600, 'a')).error);
  EXPECT_EQ(normalizeRequest(std::string(600, 'a')).error->kind, ErrorKind::NameTooLong);
  EXPECT_EQ(normalizeRequest("..").error->kind, ErrorKind::OutsideRoot);
  EXPECT_EQ(normalizeRequest("a\x01b").error->kind, ErrorKind::BadName);
  EXPECT_EQ(normalizeRequest("/./").error->kind, ErrorKind::NotFound);
}

TEST(Files, PerHost) {
  std::vector<PerHostRule> rules{{"boot.cfg", "hosts/{name}/boot.cfg"},
                                             {"pxelinux.cfg/default", "pxelinux.cfg/01-{mac}"}};
  inventory::Host h{"alpha", MacAddress::parse("52:54:00:00:00:01"), std::nullopt, "lab", {}, {}, {}};
  EXPECT_EQ(applyPerHost(rules, "boot.cfg", &h), "hosts/alpha/boot.cfg");
  EXPECT_EQ(applyPerHost(rules, "pxelinux.cfg/default", &h), "pxelinux.cfg/01-52-54-00-00-00-01");
  EXPECT_EQ(applyPerHost(rules, "boot.cfg", nullptr), "boot.cfg");
  EXPECT_EQ(applyPerHost(rules, "other", &h), "other");
}

// {mac} means the same text in a per-host file as in every other template (iSCSI target names).
TEST(Files, MacIsSpelledLikeInEveryTemplate) {
  std::vector<PerHostRule> rules{{"boot.cfg", "hosts/{mac}"}};
  inventory::Host h{"alpha", MacAddress::parse("52:54:00:AB:CD:01"), std::nullopt, "", {}, {}, {}};
  EXPECT_EQ(applyPerHost(rules, "boot.cfg", &h), "hosts/" + config::macTemplateText(*h.mac));
  EXPECT_EQ(applyPerHost(rules, "boot.cfg", &h), "hosts/52-54-00-ab-cd-01");
}

TEST(Files, TemplateChecks) {
  EXPECT_FALSE(checkTemplate("hosts/{name}/{mac}-{ip}.{group}"));
  EXPECT_EQ(checkTemplate(""), "is empty");
  EXPECT_EQ(checkTemplate("a}"), "has a '}' without '{'");
  EXPECT_EQ(checkTemplate("{name"), "has a '{' without '}'");
  EXPECT_NE(checkTemplate("{hostname}")->find("unknown variable {hostname}"), std::string::npos);
  EXPECT_EQ(checkTemplate("a/../{name}"), "must not contain a '..' component");
}

class FilesOpen : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() / ("pxedust-files-" + std::to_string(::getpid()));
    fs::remove_all(base_);
    fs::create_directories(base_ / "root/sub");
    std::ofstream(base_ / "root/sub/file") << "hello";
    std::ofstream(base_ / "secret") << "secret";
    fs::create_symlink("/etc/hostname", base_ / "root/abs-link");
    fs::create_symlink("../../secret", base_ / "root/sub/up-link");
    fs::create_symlink("file", base_ / "root/sub/ok-link");
    ::mkfifo((base_ / "root/fifo").c_str(), 0644);
    auto r = openRoot((base_ / "root").string());
    ASSERT_TRUE(r.ok());
    root_ = std::move(*r);
  }
  void TearDown() override { fs::remove_all(base_); }
  fs::path base_;
  UniqueFd root_;
};

TEST_F(FilesOpen, ServesRegularFilesBeneathTheRoot) {
  auto f = openBeneath(root_.get(), "sub/file");
  ASSERT_FALSE(f.error);
  EXPECT_EQ(f.size, 5u);
  auto l = openBeneath(root_.get(), "sub/ok-link");
  EXPECT_FALSE(l.error);
}

TEST_F(FilesOpen, NothingEscapes) {
  EXPECT_EQ(openBeneath(root_.get(), "abs-link").error->kind, ErrorKind::OutsideRoot);
  EXPECT_EQ(openBeneath(root_.get(), "sub/up-link").error->kind, ErrorKind::OutsideRoot);
  EXPECT_EQ(openBeneath(root_.get(), "missing").error->kind, ErrorKind::NotFound);
  EXPECT_EQ(openBeneath(root_.get(), "sub/file/x").error->kind, ErrorKind::NotFound);
}

TEST_F(FilesOpen, OnlyRegularFiles) {
  auto d = openBeneath(root_.get(), "sub");
  ASSERT_TRUE(d.error);
  EXPECT_EQ(d.error->kind, ErrorKind::NotAFile);
  EXPECT_EQ(d.error->clientText, "Not a regular file");
  auto p = openBeneath(root_.get(), "fifo");  // must not block
  ASSERT_TRUE(p.error);
  EXPECT_EQ(p.error->kind, ErrorKind::NotAFile);
}
