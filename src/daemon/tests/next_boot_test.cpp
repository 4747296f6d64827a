// One-shot boots: the entry's life (armed -> booting -> done) as the tracker's view of its host
// moves, and the file it is kept in.
#include "daemon/next_boot.hpp"

#include <gtest/gtest.h>

#include "config/config.hpp"

namespace pxedust::daemon {
namespace {

using Change = NextBoot::Change;
using State = NextBootEntry::State;

TEST(NextBoot, ArmedUntilABootStartsThenDoneAtUp) {
  NextBoot nb;
  nb.arm("alpha", "rescue", 3, 1000);
  // The boot it was armed in goes on (even to up): still armed, for the next one.
  EXPECT_EQ(nb.observe("alpha", {3, false}, 1100), Change::None);
  EXPECT_EQ(nb.observe("alpha", {3, true}, 1200), Change::None);
  EXPECT_EQ(nb.find("alpha")->state, State::Armed);
  // The next boot starts: it runs as rescue.
  EXPECT_EQ(nb.observe("alpha", {4, false}, 1300), Change::Booting);
  EXPECT_EQ(nb.find("alpha")->state, State::Booting);
  EXPECT_EQ(nb.find("alpha")->bootStartedAtMs, 1300);
  EXPECT_EQ(nb.observe("alpha", {4, false}, 1400), Change::None);
  EXPECT_EQ(nb.hostGroups().at("alpha"), "rescue");
  // It is up: done, the host is its own again.
  EXPECT_EQ(nb.observe("alpha", {4, true}, 1500), Change::Done);
  EXPECT_EQ(nb.find("alpha"), nullptr);
  EXPECT_TRUE(nb.empty());
  EXPECT_EQ(nb.observe("alpha", {5, false}, 1600), Change::None);
}

TEST(NextBoot, ABootAfterTheOneShotEndsItWhenUpIsNeverSaid) {
  NextBoot nb;
  nb.arm("beta", "installer", 0, 0);
  EXPECT_EQ(nb.observe("beta", {1, false}, 10), Change::Booting);
  EXPECT_EQ(nb.observe("beta", {2, false}, 20), Change::Done);
  EXPECT_TRUE(nb.empty());
}

TEST(NextBoot, ArmingAgainReplacesAndCancelRemoves) {
  NextBoot nb;
  nb.arm("alpha", "rescue", 0, 0);
  nb.arm("beta", "rescue", 0, 0);
  EXPECT_EQ(nb.observe("alpha", {1, false}, 5), Change::Booting);
  nb.arm("alpha", "installer", 1, 6);  // re-armed mid-boot: for the boot after this one
  EXPECT_EQ(nb.find("alpha")->state, State::Armed);
  EXPECT_EQ(nb.find("alpha")->group, "installer");
  EXPECT_EQ(nb.observe("alpha", {1, true}, 7), Change::None);
  EXPECT_TRUE(nb.cancel("beta"));
  EXPECT_FALSE(nb.cancel("beta"));
  EXPECT_EQ(nb.entries().size(), 1U);
}

TEST(NextBoot, TheFileRoundTripsAndEveryEntryIsMarkedAtZeroBoots) {
  NextBoot nb;
  nb.arm("alpha", "rescue", 7, 1700000000000);
  nb.arm("beta", "installer", 2, 1700000000001);
  ASSERT_EQ(nb.observe("beta", {3, false}, 1700000000002), Change::Booting);
  auto back = NextBoot::fromJson(nb.toJson());
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->entries().size(), 2U);
  EXPECT_EQ(back->find("alpha")->group, "rescue");
  EXPECT_EQ(back->find("alpha")->state, State::Armed);
  EXPECT_EQ(back->find("alpha")->armedAtMs, 1700000000000);
  EXPECT_EQ(back->find("alpha")->bootsMark, 0U);
  EXPECT_EQ(back->find("beta")->state, State::Booting);
  EXPECT_EQ(back->find("beta")->bootStartedAtMs, 1700000000002);
  EXPECT_EQ(back->find("beta")->bootsMark, 0U);
  // After a restart the tracker counts from zero: its first boot start ends beta's one-shot (the
  // boot it was in is over), and starts alpha's.
  EXPECT_EQ(back->observe("alpha", {1, false}, 1), Change::Booting);
  EXPECT_EQ(back->observe("beta", {1, false}, 1), Change::Done);
}

TEST(NextBoot, ADamagedFileIsRefusedWhole) {
  for (const char* text : {"", "[]", "{\"version\": 2, \"hosts\": {}}", "{\"version\": 1}",
                           "{\"version\": 1, \"hosts\": {\"a b\": {\"group\": \"g\", \"state\": \"armed\", \"armed_at_ms\": 1}}}",
                           "{\"version\": 1, \"hosts\": {\"a\": {\"group\": \"../g\", \"state\": \"armed\", \"armed_at_ms\": 1}}}",
                           "{\"version\": 1, \"hosts\": {\"a\": {\"group\": \"g\", \"state\": \"gone\", \"armed_at_ms\": 1}}}",
                           "{\"version\": 1, \"hosts\": {\"a\": {\"group\": \"g\", \"state\": \"armed\"}}}",
                           "{\"version\": 1, \"hosts\": {\"a\": {\"group\": \"g\", \"state\": \"armed\", \"armed_at_ms\": 1},"
                           " \"b\": 7}}"}) {
    EXPECT_FALSE(NextBoot::fromJson(text)) << text;
  }
  auto empty = NextBoot::fromJson("{\"version\": 1, \"hosts\": {}}");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

// The loader's side: a host resolved with another group, as if the file said so.
TEST(NextBootConfig, AHostIsResolvedWithTheOneShotGroupAndKeepsWhatItSetsItself) {
  const std::string text = R"(
[[group]]
name = "farm"
image = "debian"
[[group]]
name = "rescue"
image = "rescue"
iscsi_allow = ["10.0.0.0/24"]
[[host]]
name = "alpha"
ip = "10.0.0.11"
group = "farm"
[[host]]
name = "beta"
ip = "10.0.0.12"
group = "farm"
image = "beta-own"
[[host]]
name = "gamma"
ip = "10.0.0.13"
)";
  config::LoadOptions options;
  options.hostGroups = {{"alpha", "rescue"}, {"beta", "rescue"}, {"gamma", "nosuchgroup"}, {"nosuchhost", "rescue"}};
  auto c = config::loadString(text, "t.toml", {}, options);
  ASSERT_EQ(c.hosts.size(), 3U);
  EXPECT_EQ(c.hosts[0].group, "rescue");
  EXPECT_EQ(c.hosts[0].configuredGroup, "farm");
  EXPECT_EQ(c.hosts[0].disk.image, "rescue");
  ASSERT_TRUE(c.hosts[0].disk.allow);
  EXPECT_EQ(c.hosts[1].group, "rescue");
  EXPECT_EQ(c.hosts[1].disk.image, "beta-own");  // the host's own key wins
  EXPECT_EQ(c.hosts[2].group, "");               // no such group: not applied, not an error
  EXPECT_EQ(c.hosts[2].configuredGroup, "");
  EXPECT_EQ(c.text, text);
  auto plain = config::loadString(text, "t.toml", {});
  EXPECT_EQ(plain.hosts[0].group, "farm");
  EXPECT_EQ(plain.hosts[0].disk.image, "debian");
}

}  // namespace
}  // namespace pxedust::daemon
