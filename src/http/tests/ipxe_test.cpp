// The iPXE script of a host: templates and the built-in script (http/ipxe.hpp).
#include <gtest/gtest.h>

#include "http/ipxe.hpp"

namespace pxedust::http {
namespace {

ScriptFacts node1() {
  ScriptFacts f;
  f.baseUrl = "http://10.0.0.1/";
  f.name = "node1";
  f.mac = "52-54-00-12-34-56";
  f.ip = "10.0.0.11";
  f.group = "web";
  f.image = "debian12";
  f.rootPath = "iscsi:10.0.0.1::::iqn.2026-11.io.pxedust:node1";
  return f;
}

TEST(Ipxe, DefaultScriptBootsTheKernelAndInitrdsOverHttp) {
  auto f = node1();
  f.boot.kernel = "debian/vmlinuz";
  f.boot.initrd = std::vector<std::string>{"/debian/initrd.img", "http://10.0.0.2/firmware.cpio"};
  f.boot.kernelArgs = "console=ttyS0 quiet";
  auto s = defaultScript(f);
  EXPECT_EQ(s.problem, "");
  EXPECT_EQ(s.text,
            "#!ipxe\n# pxedust: host node1 (52-54-00-12-34-56), 10.0.0.11, image debian12\n"
            "kernel http://10.0.0.1/debian/vmlinuz console=ttyS0 quiet\n"
            "initrd http://10.0.0.1/debian/initrd.img\n"
            "initrd http://10.0.0.2/firmware.cpio\n"
            "boot\n");
}

// Nothing to boot: the client's console says what is missing, and the script ends, never a sanboot
// of an image that has no boot loader.
TEST(Ipxe, WithoutAKernelTheScriptSaysWhatIsMissing) {
  auto s = defaultScript(node1());
  EXPECT_NE(s.problem, "");
  EXPECT_NE(s.text.find("echo pxedust: host node1 (52-54-00-12-34-56): no kernel"), std::string::npos) << s.text;
  EXPECT_NE(s.text.find("exit 1\n"), std::string::npos);
  EXPECT_EQ(s.text.find("sanboot"), std::string::npos);
  ScriptFacts unknown;
  unknown.mac = "02-00-00-00-00-01";
  EXPECT_NE(defaultScript(unknown).text.find("client 02-00-00-00-00-01"), std::string::npos);
}

TEST(Ipxe, TemplatesTakeEveryHostValueAndLeaveIpxeSettingsAlone) {
  auto f = node1();
  f.boot.kernel = "vmlinuz";
  f.boot.initrd = std::vector<std::string>{"a.img", "b.img"};
  f.boot.kernelArgs = "quiet";
  auto text = expandTemplate(
      "#!ipxe\necho {name} {mac} {ip} {group} {image}\nset root {root_path}\n"
      "kernel {kernel} {kernel_args} ip=${net0/ip}\ninitrd {initrd}\nchain {base_url}next {{literal}}\n",
      variablesOf(f));
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_EQ(*text,
            "#!ipxe\necho node1 52-54-00-12-34-56 10.0.0.11 web debian12\n"
            "set root iscsi:10.0.0.1::::iqn.2026-11.io.pxedust:node1\n"
            "kernel http://10.0.0.1/vmlinuz quiet ip=${net0/ip}\n"
            "initrd http://10.0.0.1/a.img http://10.0.0.1/b.img\n"
            "chain http://10.0.0.1/next {literal}\n");
}

TEST(Ipxe, ATemplateErrorNamesTheKeyAndWhere) {
  auto unknown = expandTemplate("#!ipxe\nkernel {kernal}\n", variablesOf(node1()));
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unknown {kernal} at offset 14"), std::string::npos) << unknown.error().message;
  EXPECT_NE(unknown.error().message.find("{kernel}"), std::string::npos);  // what would have worked
  auto open = expandTemplate("echo {name", variablesOf(node1()));
  ASSERT_FALSE(open);
  EXPECT_NE(open.error().message.find("offset 5 has no '}'"), std::string::npos) << open.error().message;
}

TEST(Ipxe, SettingsInheritFieldByField) {
  BootSettings host;
  host.kernelArgs = "console=ttyS0";
  BootSettings group;
  group.kernel = "group/vmlinuz";
  group.kernelArgs = "quiet";
  host.inherit(group);
  EXPECT_EQ(host.kernel, "group/vmlinuz");
  EXPECT_EQ(host.kernelArgs, "console=ttyS0");
  EXPECT_FALSE(host.initrd);
  EXPECT_EQ(urlFor("http://10.0.0.1:8080/", "tftp://10.0.0.1/x"), "tftp://10.0.0.1/x");
}

}  // namespace
}  // namespace pxedust::http
