"""DHCP against real clients (isc-dhcp-client, busybox udhcpc) and scapy-crafted PXE/iPXE packets,
inside network namespaces the test creates (dhcplab.py). Run as root; skipped where namespaces or
the clients are missing."""

import os
import shutil
import signal
import socket
import subprocess
import time
import unittest

from dhcplab import RELAY_IP, SERVER_IP, Lab, can_make_namespaces

try:
    from scapy.all import BOOTP, DHCP  # noqa: E402
    HAVE_SCAPY = True
except ImportError:  # pragma: no cover
    HAVE_SCAPY = False

ALPHA_MAC = "52:54:00:aa:00:01"
BETA_MAC = "52:54:00:aa:00:02"

CONFIG_TEMPLATE = f"""
[dhcp]
interfaces = ["pxd0"]
next_server = "{SERVER_IP}"
boot = {{ bios = "pxelinux.0", uefi = "ipxe.efi", arm64 = "arm64/ipxe.efi", http = "http://{SERVER_IP}/uefi/ipxe.efi" }}
ipxe_script = "http://{SERVER_IP}/boot.ipxe"
decline_hold = 600
[[dhcp.subnet]]
subnet = "10.213.0.0/24"
pools = ["{{pool}}"]
routers = "{SERVER_IP}"
dns = ["{SERVER_IP}"]
lease_time = 600
[[dhcp.subnet]]
subnet = "10.214.0.0/24"
pools = ["10.214.0.50-10.214.0.60"]
root_path = "nfs:relayed"
[[group]]
name = "lab"
root_path = "iscsi:{SERVER_IP}::::iqn.2026-11.org.pxedust:lab"
[[host]]
name = "alpha"
mac = "{ALPHA_MAC}"
ip = "10.213.0.11"
group = "lab"
root_path = "iscsi:{SERVER_IP}::::iqn.2026-11.org.pxedust:alpha"
[[host]]
name = "beta"
mac = "{BETA_MAC}"
group = "lab"
"""


CONFIG = CONFIG_TEMPLATE.replace("{pool}", "10.213.0.100-10.213.0.149")
SMALL_POOL_CONFIG = CONFIG_TEMPLATE.replace("{pool}", "10.213.0.100-10.213.0.102")


def needs_lab(cls):
    if os.geteuid() != 0 or not can_make_namespaces():
        return unittest.skip("needs root and network namespaces")(cls)
    return cls


class LabCase(unittest.TestCase):
    config = CONFIG
    peer = False  # a third namespace for another DHCP server on the same link

    def setUp(self):
        self.lab = Lab(peer=self.peer)
        self.addCleanup(self.lab.close)
        self.lab.start(self.config)

    def tearDown(self):
        log = self.lab.read_log()
        self.assertNotIn("runtime error", log)          # UBSan
        self.assertNotIn("AddressSanitizer", log)

    # --- real clients ------------------------------------------------------------------------
    def dhclient(self, mac, extra_conf=""):
        """One dhclient run (-1: give up after one attempt); returns the env its script saw."""
        self.lab.set_client_mac(mac)
        d = self.lab.dir
        out = os.path.join(d, f"dhclient-{mac.replace(':', '')}.env")
        script = os.path.join(d, "dhclient-script.sh")
        with open(script, "w") as f:
            f.write(f"#!/bin/sh\ncase \"$reason\" in BOUND|REBOOT|RENEW) env > {out};; esac\nexit 0\n")
        os.chmod(script, 0o755)
        conf = os.path.join(d, "dhclient.conf")
        with open(conf, "w") as f:
            f.write("request subnet-mask, routers, domain-name-servers, host-name, root-path;\n" + extra_conf)
        pidfile = os.path.join(d, "dhclient.pid")
        lease = os.path.join(d, f"dhclient-{mac.replace(':', '')}.leases")
        with open(os.path.join(d, "dhclient.log"), "ab") as log:
            proc = self.lab.popen_ns(self.lab.cli, ["dhclient", "-d", "-1", "-4", "-cf", conf, "-sf", script,
                                                    "-lf", lease, "-pf", pidfile, "pxc0"],
                                     stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.time() + 60
            while time.time() < deadline and not os.path.exists(out):
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=10)
        if not os.path.exists(out):
            with open(os.path.join(d, "dhclient.log")) as f:
                self.fail("dhclient got no lease:\n" + f.read()[-3000:] + "\n" + self.lab.read_log()[-3000:])
        env = {}
        with open(out) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                env[k] = v
        os.unlink(out)
        return env

    def udhcpc(self, mac, release=False):
        self.lab.set_client_mac(mac)
        d = self.lab.dir
        out = os.path.join(d, "udhcpc.env")
        script = os.path.join(d, "udhcpc-script.sh")
        with open(script, "w") as f:
            # With -R the address must be on the interface: udhcpc sends its RELEASE from it.
            add = "ip addr add $ip/${mask:-24} dev $interface" if release else ":"
            f.write(f"#!/bin/sh\n[ \"$1\" = bound ] && {{ {add}; env > {out}; }}\nexit 0\n")
        os.chmod(script, 0o755)
        cmd = ["busybox", "udhcpc", "-i", "pxc0", "-n", "-f", "-t", "5", "-T", "2", "-s", script,
               "-O", "rootpath", "-O", "hostname"]
        if not release:
            r = self.lab.ns(self.lab.cli, *(cmd + ["-q"]), check=False, timeout=60)
            err = r.stderr
        else:
            # Stays bound until SIGTERM, then releases (-R) and exits.
            proc = self.lab.popen_ns(self.lab.cli, cmd + ["-R"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 30
            while not os.path.exists(out) and time.time() < deadline and proc.poll() is None:
                time.sleep(0.05)
            time.sleep(0.2)  # let the script finish writing
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            err = proc.communicate(timeout=20)[1]
        if not os.path.exists(out):
            self.fail(f"udhcpc got no lease:\n{err[-2000:]}\n{self.lab.read_log()[-3000:]}")
        env = {}
        with open(out) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                env[k] = v
        os.unlink(out)
        return env


@needs_lab
class RealClients(LabCase):
    @unittest.skipUnless(shutil.which("dhclient"), "isc-dhcp-client not installed")
    def test_dhclient_gets_reservation_hostname_and_root_path(self):
        env = self.dhclient(ALPHA_MAC)
        self.assertEqual(env.get("new_ip_address"), "10.213.0.11")
        self.assertEqual(env.get("new_host_name"), "alpha")
        self.assertEqual(env.get("new_root_path"), f"iscsi:{SERVER_IP}::::iqn.2026-11.org.pxedust:alpha")
        self.assertEqual(env.get("new_routers"), SERVER_IP)
        self.assertEqual(env.get("new_subnet_mask"), "255.255.255.0")

    @unittest.skipUnless(shutil.which("busybox"), "busybox not installed")
    def test_udhcpc_gets_reservation_hostname_and_root_path(self):
        env = self.udhcpc(ALPHA_MAC)
        self.assertEqual(env.get("ip"), "10.213.0.11")
        self.assertEqual(env.get("hostname"), "alpha")
        self.assertEqual(env.get("rootpath"), f"iscsi:{SERVER_IP}::::iqn.2026-11.org.pxedust:alpha")

    @unittest.skipUnless(shutil.which("busybox"), "busybox not installed")
    def test_group_member_without_ip_gets_pool_address_and_group_root_path(self):
        env = self.udhcpc(BETA_MAC)
        self.assertIn(env.get("ip"), {"10.213.0.100", "10.213.0.101", "10.213.0.102"})
        self.assertEqual(env.get("hostname"), "beta")
        self.assertEqual(env.get("rootpath"), f"iscsi:{SERVER_IP}::::iqn.2026-11.org.pxedust:lab")
        # The pool's addresses by state, as /metrics has them.
        pool = {k.split('state="')[1].rstrip('"}'): v for k, v in self.lab.daemon.metrics().items()
                if k.startswith('pxedust_dhcp_pool_addresses{subnet="10.213.0.0/24"')}
        self.assertEqual(pool["bound"], 1, pool)
        self.assertEqual(pool["total"], pool["free"] + pool["reserved"] + pool["bound"], pool)

    @unittest.skipUnless(shutil.which("busybox"), "busybox not installed")
    def test_pool_address_survives_restart_and_kill9_and_release_frees_it(self):
        first = self.udhcpc("52:54:00:bb:00:01")["ip"]
        self.assertIn(f"addr={first} state=bound", self.lab.leases())
        # A clean restart, then a crash: the client keeps its address, no one else gets it.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            self.lab.stop(sig)
            self.lab.start(self.config)
            self.assertEqual(self.udhcpc("52:54:00:bb:00:01")["ip"], first)
            other = self.udhcpc("52:54:00:bb:00:02")["ip"]
            self.assertNotEqual(other, first)
        # RELEASE frees it.
        self.udhcpc("52:54:00:bb:00:01", release=True)
        deadline = time.time() + 5
        while f"addr={first} state=released" not in self.lab.leases() and time.time() < deadline:
            time.sleep(0.1)
        self.assertIn(f"addr={first} state=released", self.lab.leases())


# --- scapy-crafted exchanges -----------------------------------------------------------------

def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def exchange(lab, packets, expect=1, listen_port=68, bind_ip="0.0.0.0", dest=("255.255.255.255", 67),
             timeout=3.0, dev="pxc0"):
    """Sends scapy-built packets from inside the client namespace and returns the replies' bytes."""
    import json
    import sys
    code = f"""
import socket, sys, time, json
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"{dev}")
s.bind(("{bind_ip}", {listen_port}))
pkts = [bytes.fromhex(h) for h in json.loads(sys.argv[1])]
out = []
for p in pkts:
    s.sendto(p, ("{dest[0]}", {dest[1]}))
    end = time.time() + {timeout}
    got = 0
    while got < {expect} and time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            data, frm = s.recvfrom(4096)
        except socket.timeout:
            break
        if len(data) > 240 and data[0] == 2:
            out.append([data.hex(), frm[0], frm[1]])
            got += 1
print(json.dumps(out))
"""
    r = lab.ns(lab.cli, sys.executable, "-c", code, json.dumps([bytes(p).hex() for p in packets]), timeout=60)
    return [(BOOTP(bytes.fromhex(h)), ip, port) for h, ip, port in json.loads(r.stdout)]


def opts(reply):
    """Options by scapy's name and by code."""
    from scapy.layers.dhcp import DHCPRevOptions
    out = {}
    for o in reply[DHCP].options:
        if isinstance(o, tuple):
            value = o[1] if len(o) == 2 else o[1:]
            out[o[0]] = value
            if o[0] in DHCPRevOptions:
                out[DHCPRevOptions[o[0]][0]] = value
    return out


def discover(mac, xid, options=(), giaddr="0.0.0.0", flags=0x8000, msg="discover"):
    return (BOOTP(op=1, chaddr=mac_bytes(mac) + b"\0" * 10, xid=xid, flags=flags, giaddr=giaddr) /
            DHCP(options=[("message-type", msg)] + list(options) + ["end"]))


PXE_BIOS = [("vendor_class_id", b"PXEClient:Arch:00000:UNDI:002001"), (93, b"\x00\x00"),
            (94, b"\x01\x02\x01"), (97, b"\x00" + bytes(range(16)))]
PXE_UEFI = [("vendor_class_id", b"PXEClient:Arch:00007:UNDI:003016"), (93, b"\x00\x07")]
PXE_ARM64 = [("vendor_class_id", b"PXEClient:Arch:00011:UNDI:003000"), (93, b"\x00\x0b")]
HTTP_UEFI = [("vendor_class_id", b"HTTPClient:Arch:00016:UNDI:003001"), (93, b"\x00\x10")]
IPXE = [("vendor_class_id", b"PXEClient:Arch:00000:UNDI:002001"), (93, b"\x00\x00"),
        ("user_class", b"iPXE"), (175, b"\xb1\x05\x01\x10\xec\x81\x39\x13\x01\x01")]


@needs_lab
@unittest.skipUnless(HAVE_SCAPY, "python3-scapy not installed")
class BootPolicy(LabCase):
    def offer(self, mac, options, xid=0x1234, **kw):
        replies = exchange(self.lab, [discover(mac, xid, options, **kw)])
        self.assertEqual(len(replies), 1, self.lab.read_log()[-3000:])
        reply = replies[0][0]
        self.assertEqual(reply.xid, xid)
        self.assertEqual(opts(reply)["message-type"], 2)
        return reply

    def test_architectures_get_their_own_boot_files(self):
        cases = [(PXE_BIOS, "pxelinux.0"), (PXE_UEFI, "ipxe.efi"), (PXE_ARM64, "arm64/ipxe.efi"),
                 (HTTP_UEFI, f"http://{SERVER_IP}/uefi/ipxe.efi")]
        for i, (options, want) in enumerate(cases):
            with self.subTest(want=want):
                r = self.offer(f"52:54:00:cc:00:0{i}", options, xid=0x100 + i)
                self.assertEqual(r.file.rstrip(b"\0").decode(), want)
                self.assertEqual(r.siaddr, SERVER_IP)
                o = opts(r)
                if want.startswith("http"):
                    self.assertEqual(o["vendor_class_id"], b"HTTPClient")
                else:
                    self.assertEqual(o["vendor_class_id"], b"PXEClient")
        # The BIOS client's UUID (option 97) is echoed.
        r = self.offer("52:54:00:cc:00:09", PXE_BIOS, xid=0x1ff)
        self.assertEqual(opts(r)[97], b"\x00" + bytes(range(16)))

    def test_ipxe_gets_script_and_no_pxedhcp_never_the_binary_again(self):
        r = self.offer("52:54:00:cc:01:01", IPXE)
        self.assertEqual(r.file.rstrip(b"\0").decode(), f"http://{SERVER_IP}/boot.ipxe")
        self.assertEqual(opts(r)[175], b"\xb0\x01\x01")

    def test_ipxe_host_gets_root_path(self):
        r = self.offer(ALPHA_MAC, IPXE)
        self.assertEqual(r.yiaddr, "10.213.0.11")
        self.assertEqual(opts(r)["root_disk_path"], f"iscsi:{SERVER_IP}::::iqn.2026-11.org.pxedust:alpha".encode())

    def test_unicast_reply_without_broadcast_flag(self):
        # iPXE does not set the broadcast flag: the OFFER goes to the offered address and the MAC.
        self.lab.set_client_mac(ALPHA_MAC)
        self.lab.ns(self.lab.cli, "ip", "addr", "add", "10.213.0.11/24", "dev", "pxc0")
        replies = exchange(self.lab, [discover(ALPHA_MAC, 0x77, IPXE, flags=0)])
        self.assertEqual(len(replies), 1, self.lab.read_log()[-3000:])
        self.assertEqual(replies[0][0].yiaddr, "10.213.0.11")

    def test_relayed_request_gets_the_relay_subnet_and_option82_back(self):
        self.lab.give_client_relay_route()
        agent = b"\x01\x04port\x02\x03abc"
        replies = exchange(self.lab, [discover("52:54:00:cc:02:01", 0x99, [(82, agent)], giaddr=RELAY_IP, flags=0)],
                           listen_port=67, bind_ip=RELAY_IP, dest=(SERVER_IP, 67))
        self.assertEqual(len(replies), 1, self.lab.read_log()[-3000:])
        r, src, sport = replies[0]
        self.assertTrue(r.yiaddr.startswith("10.214.0."), r.yiaddr)
        self.assertEqual(opts(r)["relay_agent_information"], agent)
        self.assertEqual(opts(r)["root_disk_path"], b"nfs:relayed")
        self.assertEqual((src, sport), (SERVER_IP, 67))

    def test_request_for_wrong_address_gets_nak(self):
        req = discover(ALPHA_MAC, 5, [("requested_addr", "10.213.0.12")], msg="request")
        r = exchange(self.lab, [req])
        self.assertEqual(len(r), 1)
        self.assertEqual(opts(r[0][0])["message-type"], 6)

    def test_silent_on_other_interfaces_and_garbage(self):
        # pxd1 has an address but is not in [dhcp] interfaces: nothing comes back on it.
        self.assertEqual(exchange(self.lab, [discover("52:54:00:ee:00:01", 7)], dev="pxc1", timeout=1.0), [])
        # Garbage first, then a good request: still served.
        bad = [b"\x01" * 10, bytes(300), bytes(discover("52:54:00:ee:00:02", 8))[:250]]
        exchange(self.lab, bad, expect=0, timeout=0.2)
        self.offer("52:54:00:ee:00:03", [], xid=9)


@needs_lab
@unittest.skipUnless(HAVE_SCAPY, "python3-scapy not installed")
class Decline(LabCase):
    config = SMALL_POOL_CONFIG
    offer = BootPolicy.offer

    def test_declined_address_is_not_offered_again(self):
        # Pool: .100-.102. A client declines what it was given; the next clients never get it.
        mac = "52:54:00:dd:00:01"
        addr = self.offer(mac, [], xid=1).yiaddr
        req = discover(mac, 2, [("requested_addr", addr), ("server_id", SERVER_IP)], msg="request")
        ack = exchange(self.lab, [req])[0][0]
        self.assertEqual(opts(ack)["message-type"], 5)
        exchange(self.lab, [discover(mac, 3, [("requested_addr", addr), ("server_id", SERVER_IP)], msg="decline")],
                 expect=0, timeout=0.5)
        seen = set()
        for i in range(2):
            other = f"52:54:00:dd:01:0{i}"
            got = self.offer(other, [], xid=10 + i).yiaddr
            seen.add(got)
            # Take it, so the next client needs another address.
            exchange(self.lab, [discover(other, 20 + i, [("requested_addr", got), ("server_id", SERVER_IP)],
                                         msg="request")])
        self.assertNotIn(addr, seen)
        self.assertEqual(len(seen), 2)
        # Only the quarantined address is left: no offer at all.
        self.assertEqual(exchange(self.lab, [discover("52:54:00:dd:02:00", 30)], timeout=1.0), [])
        self.assertEqual(self.lab.drops("pool_exhausted"), 1)
        self.assertIn(f"addr={addr} state=declined", self.lab.leases())


PROXY_CONFIG = f"""
[dhcp]
interfaces = ["pxd0"]
mode = "proxy"
boot = {{ bios = "undionly.kpxe", uefi = "ipxe.efi" }}
ipxe_script = "http://{SERVER_IP}/boot.ipxe"
"""


@needs_lab
@unittest.skipUnless(HAVE_SCAPY, "python3-scapy not installed")
class Proxy(LabCase):
    config = PROXY_CONFIG

    def test_proxy_answers_pxe_clients_with_boot_info_only(self):
        r = exchange(self.lab, [discover("52:54:00:ff:00:01", 0x31, PXE_UEFI)])
        self.assertEqual(len(r), 1, self.lab.read_log()[-3000:])
        reply = r[0][0]
        self.assertEqual(reply.yiaddr, "0.0.0.0")
        self.assertEqual(reply.file.rstrip(b"\0").decode(), "ipxe.efi")
        o = opts(reply)
        self.assertEqual(o["vendor_class_id"], b"PXEClient")
        self.assertEqual(o["server_id"], SERVER_IP)
        self.assertNotIn("lease_time", o)

    def test_proxy_never_answers_non_pxe_clients(self):
        self.assertEqual(exchange(self.lab, [discover("52:54:00:ff:00:02", 0x32)], timeout=1.0), [])
        self.assertEqual(self.lab.drops("proxy_not_pxe"), 1)

    def test_port_4011_boot_server_discovery(self):
        # The client has its address from the other server by now and asks on port 4011.
        self.lab.set_client_mac("52:54:00:ff:00:03")
        self.lab.ns(self.lab.cli, "ip", "addr", "add", "10.213.0.77/24", "dev", "pxc0")
        req = (BOOTP(op=1, chaddr=mac_bytes("52:54:00:ff:00:03") + b"\0" * 10, xid=0x33, ciaddr="10.213.0.77") /
               DHCP(options=[("message-type", "request")] + PXE_BIOS + ["end"]))
        r = exchange(self.lab, [req], listen_port=4011, bind_ip="10.213.0.77", dest=(SERVER_IP, 4011))
        self.assertEqual(len(r), 1, self.lab.read_log()[-3000:])
        reply, src, sport = r[0]
        self.assertEqual(opts(reply)["message-type"], 5)
        self.assertEqual(reply.file.rstrip(b"\0").decode(), "undionly.kpxe")
        self.assertEqual(sport, 4011)



BURST = """
import json, socket, sys, time
from scapy.all import BOOTP, DHCP
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"pxc0")
s.bind(("0.0.0.0", 68))
print("ready", flush=True)
def ask(pkt, xid, want):
    s.sendto(bytes(pkt), ("255.255.255.255", 67))
    end = time.time() + 0.3
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            data = s.recv(4096)
        except socket.timeout:
            return None
        r = BOOTP(data)
        if r.xid == xid and DHCP in r and ("message-type", want) in r[DHCP].options:
            return r
    return None
for i in range(int(sys.argv[1])):
    mac = bytes([0x52, 0x54, 0x01, 0, i >> 8, i & 0xff])
    xid = 0x10000 + i
    base = BOOTP(op=1, chaddr=mac + bytes(10), xid=xid, flags=0x8000)
    o = ask(base / DHCP(options=[("message-type", "discover"), "end"]), xid, 2)
    if o is None:
        continue
    a = ask(base / DHCP(options=[("message-type", "request"), ("requested_addr", o.yiaddr),
                                 ("server_id", "10.213.0.1"), "end"]), xid, 5)
    if a is not None:
        print(json.dumps([mac.hex(":"), a.yiaddr]), flush=True)
"""


RS_CLIENT = r"""
import socket, struct, sys, time
dev = sys.argv[1]
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
idx = socket.if_nametoindex(dev)
end = time.time() + 6
while time.time() < end:
    try:
        s.sendto(bytes([133, 0, 0, 0, 0, 0, 0, 0]), ("ff02::2", 0, 0, idx))  # the kernel fills the checksum
    except OSError:  # link-local address still tentative (DAD)
        time.sleep(0.2)
        continue
    s.settimeout(0.5)
    try:
        while True:
            data, frm = s.recvfrom(1500)
            if data[0] == 134:
                print("RA", data[1], struct.unpack("!H", data[6:8])[0], data[5], frm[0].split("%")[0])
                sys.exit(0)
    except socket.timeout:
        pass
print("none")
"""


@needs_lab
class RouterSolicitations(LabCase):
    """iPXE waits seconds for an IPv6 router on every boot unless one answers: pxedust answers with
    "no router here" (lifetime 0, no M/O flags), on its DHCP interfaces and nowhere else."""

    def test_answered_with_lifetime_zero_on_dhcp_interfaces_only(self):
        import sys
        r = self.lab.ns(self.lab.cli, sys.executable, "-c", RS_CLIENT, "pxc0", timeout=30)
        words = r.stdout.split()
        self.assertEqual(words[:4], ["RA", "0", "0", "0"], r.stdout + r.stderr)  # code 0, lifetime 0, no flags
        self.assertTrue(words[4].startswith("fe80:"), r.stdout)
        r = self.lab.ns(self.lab.cli, sys.executable, "-c", RS_CLIENT, "pxc1", timeout=30)
        self.assertEqual(r.stdout.strip(), "none", "answered on an interface DHCP is not configured for")


@needs_lab
@unittest.skipUnless(HAVE_SCAPY, "python3-scapy not installed")
class Crash(LabCase):
    def test_kill9_during_a_burst_loses_no_acked_lease_and_gives_no_address_twice(self):
        import json
        import random
        import sys
        rng = random.Random(5)
        acked = {}
        for round_ in range(3):
            proc = self.lab.popen_ns(self.lab.cli, [sys.executable, "-c", BURST, "40"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.assertEqual(proc.stdout.readline().strip(), "ready")
            time.sleep(rng.uniform(0.2, 0.8))
            self.lab.stop(signal.SIGKILL)  # mid-burst
            out, _ = proc.communicate(timeout=120)
            for line in out.splitlines():
                mac, ip = json.loads(line)
                acked[mac] = ip
            self.lab.start(self.config)
        self.assertGreater(len(acked), 0)
        # No address was ACKed to two clients.
        self.assertEqual(len(set(acked.values())), len(acked), acked)
        # Every ACKed lease is in the journal, and its client gets the same address back.
        journal = self.lab.leases()
        for mac, ip in acked.items():
            self.assertIn(f"addr={ip} state=bound", journal)
        for mac, ip in list(acked.items())[:5]:
            r = exchange(self.lab, [discover(mac, 0x55)])
            self.assertEqual(r[0][0].yiaddr, ip)


@needs_lab
@unittest.skipUnless(HAVE_SCAPY, "python3-scapy not installed")
@unittest.skipUnless(os.path.exists("/usr/sbin/dnsmasq"), "dnsmasq-base not installed")
class ProxyBesideDnsmasq(LabCase):
    """dnsmasq hands out addresses; pxedust, in proxy mode on the same link, only boot information."""
    config = PROXY_CONFIG
    peer = True

    def setUp(self):
        super().setUp()
        d = self.lab.dir
        with open(os.path.join(d, "dnsmasq.log"), "wb") as log:
            self.dnsmasq = self.lab.popen_ns(self.lab.peer, [
            "/usr/sbin/dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--interface=pxp0",
            "--bind-interfaces", "--dhcp-range=10.213.0.150,10.213.0.160,10m", "--dhcp-authoritative",
            "--no-ping", f"--dhcp-leasefile={d}/dnsmasq.leases", f"--pid-file={d}/dnsmasq.pid", "--user=root",
            "--log-dhcp"], stdout=subprocess.DEVNULL, stderr=log)
        self.addCleanup(self.stop_dnsmasq)
        time.sleep(0.5)
        self.assertIsNone(self.dnsmasq.poll(), "dnsmasq did not start")

    def stop_dnsmasq(self):
        if self.dnsmasq.poll() is None:
            self.dnsmasq.terminate()
            self.dnsmasq.wait(timeout=10)

    def test_pxe_client_gets_address_from_peer_and_boot_info_from_pxedust(self):
        mac = "52:54:00:ab:00:01"
        replies = exchange(self.lab, [discover(mac, 0x41, PXE_UEFI)], expect=2)
        by_server = {opts(r)["server_id"]: r for r, _, _ in replies}
        self.assertEqual(set(by_server), {"10.213.0.2", SERVER_IP}, self.lab.read_log()[-2000:])
        address = by_server["10.213.0.2"].yiaddr
        self.assertTrue(address.startswith("10.213.0.1"), address)  # .150-.160 from dnsmasq
        proxy = by_server[SERVER_IP]
        self.assertEqual(proxy.yiaddr, "0.0.0.0")
        self.assertEqual(proxy.file.rstrip(b"\0").decode(), "ipxe.efi")
        self.assertEqual(opts(proxy)["vendor_class_id"], b"PXEClient")
        # The client takes dnsmasq's address, then asks pxedust on port 4011.
        self.lab.set_client_mac(mac)
        self.lab.ns(self.lab.cli, "ip", "addr", "add", f"{address}/24", "dev", "pxc0")
        req = (BOOTP(op=1, chaddr=mac_bytes(mac) + b"\0" * 10, xid=0x42, ciaddr=address) /
               DHCP(options=[("message-type", "request")] + PXE_UEFI + ["end"]))
        r = exchange(self.lab, [req], listen_port=4011, bind_ip=address, dest=(SERVER_IP, 4011))
        self.assertEqual(len(r), 1, self.lab.read_log()[-2000:])
        self.assertEqual(r[0][0].file.rstrip(b"\0").decode(), "ipxe.efi")

    def test_non_pxe_client_hears_only_the_peer(self):
        replies = exchange(self.lab, [discover("52:54:00:ab:00:02", 0x43)], expect=2, timeout=2.0)
        servers = [opts(r)["server_id"] for r, _, _ in replies]
        self.assertEqual(servers, ["10.213.0.2"])
        self.assertEqual(self.lab.drops("proxy_not_pxe"), 1)


NEXT_BOOT_TOKEN = "next-boot-token-of-the-test-71c2"
NEXT_BOOT_CONFIG = CONFIG.replace(f'group = "lab"\nroot_path = "iscsi:{SERVER_IP}::::iqn.2026-11.org.pxedust:alpha"\n',
                                  'group = "lab"\n') + f"""
[[group]]
name = "rescue"
root_path = "nfs:{SERVER_IP}:/srv/rescue"
[http]
listen = ["{SERVER_IP}:8081"]
api_listen = ["127.0.0.1:8089"]
root = "@DIR@"
api_token = "{NEXT_BOOT_TOKEN}"
"""


@needs_lab
@unittest.skipUnless(HAVE_SCAPY, "python3-scapy not installed")
@unittest.skipUnless(shutil.which("curl"), "curl not installed")
class NextBoot(LabCase):
    """POST /api/v1/hosts/<name>/next-boot: one boot as a member of another group, then its own again."""

    def setUp(self):
        self.lab = Lab()
        self.addCleanup(self.lab.close)
        self.lab.start(NEXT_BOOT_CONFIG.replace("@DIR@", self.lab.dir))

    def api(self, method, path, body=None, token=NEXT_BOOT_TOKEN):
        import json
        cmd = ["curl", "-sS", "-X", method, "-o", "-", "-w", "\n%{http_code}", f"http://127.0.0.1:8089{path}"]
        if token:
            cmd += ["-H", f"Authorization: Bearer {token}"]
        if body is not None:
            cmd += ["-H", "Content-Type: application/json", "--data", body if isinstance(body, str) else json.dumps(body)]
        r = self.lab.ns(self.lab.srv, *cmd, timeout=30)
        text, _, status = r.stdout.rpartition("\n")
        return int(status), (json.loads(text) if text.strip() else None)

    def root_path(self, xid):
        replies = exchange(self.lab, [discover(ALPHA_MAC, xid, IPXE)])
        self.assertEqual(len(replies), 1, self.lab.read_log()[-3000:])
        return opts(replies[0][0])["root_disk_path"].decode()

    def entries(self):
        status, body = self.api("GET", "/api/v1/next-boot", token=None)
        self.assertEqual(status, 200)
        return {e["host"]: e for e in body["next_boot"]}

    def host(self, name):
        status, body = self.api("GET", "/api/v1/hosts", token=None)
        self.assertEqual(status, 200)
        return next(h for h in body["hosts"] if h.get("name") == name)

    def wait(self, what, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if what():
                return
            time.sleep(0.1)
        self.fail("timed out\n" + self.lab.read_log()[-3000:])

    def test_one_boot_in_the_rescue_group_then_its_own_again(self):
        own = f"iscsi:{SERVER_IP}::::iqn.2026-11.org.pxedust:lab"
        rescue = f"nfs:{SERVER_IP}:/srv/rescue"
        self.assertEqual(self.root_path(0x501), own)  # boot 1 starts
        status, body = self.api("POST", "/api/v1/hosts/alpha/next-boot", {"group": "rescue"})
        self.assertEqual(status, 200, body)
        self.assertEqual((body["host"], body["group"], body["state"], body["configured_group"]),
                         ("alpha", "rescue", "armed", "lab"))
        on_disk = json_file(os.path.join(self.lab.dir, "next-boot.json"))
        self.assertEqual(on_disk["hosts"]["alpha"]["group"], "rescue")
        # Armed: alpha is answered as rescue from now on.
        self.assertEqual(self.root_path(0x502), rescue)
        self.assertEqual(self.entries()["alpha"]["state"], "armed")  # the same boot (at dhcp): not its next one
        # Its boot goes on to up (from its own address), and the firmware starts over: the next boot.
        self.lab.ns(self.lab.cli, "ip", "addr", "add", "10.213.0.11/24", "dev", "pxc0")
        self.lab.ns(self.lab.cli, "curl", "-sS", "-X", "POST", f"http://{SERVER_IP}:8081/boot/up", timeout=30)
        self.wait(lambda: self.host("alpha")["stage"] == "up")
        self.assertEqual(self.root_path(0x503), rescue)
        self.wait(lambda: self.entries().get("alpha", {}).get("state") == "booting")
        self.assertIn("boot_started_at", self.entries()["alpha"])
        # The rescue boot says it is up: done, alpha is in its own group again.
        self.lab.ns(self.lab.cli, "curl", "-sS", "-X", "POST", f"http://{SERVER_IP}:8081/boot/up", timeout=30)
        self.wait(lambda: "alpha" not in self.entries())
        self.assertEqual(self.root_path(0x504), own)
        self.assertEqual(json_file(os.path.join(self.lab.dir, "next-boot.json"))["hosts"], {})

    def test_kept_across_a_restart_and_cancelled(self):
        own = f"iscsi:{SERVER_IP}::::iqn.2026-11.org.pxedust:lab"
        rescue = f"nfs:{SERVER_IP}:/srv/rescue"
        status, body = self.api("POST", "/api/v1/hosts/alpha/next-boot", {"group": "rescue"})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.lab.stop(), 0)
        self.lab.daemon.start(timeout=30, services=("dhcp",))
        self.assertEqual(self.entries()["alpha"]["state"], "armed")
        self.assertEqual(self.root_path(0x511), rescue)
        # The CLI on the API: listed, then taken back.
        cli = ["env", f"PXEDUST_API_TOKEN={NEXT_BOOT_TOKEN}", self.lab.daemon.binary, "next-boot",
               "--url", "http://127.0.0.1:8089"]
        listed = self.lab.ns(self.lab.srv, *cli, timeout=30).stdout
        self.assertRegex(listed, r"alpha +rescue +lab +booting")  # the DISCOVER above started its boot
        cancelled = self.lab.ns(self.lab.srv, *cli, "alpha", "--cancel", timeout=30)
        self.assertIn("alpha: next boot taken back", cancelled.stdout)
        self.assertEqual(self.entries(), {})
        self.assertEqual(self.root_path(0x512), own)
        status, body = self.api("DELETE", "/api/v1/hosts/alpha/next-boot")
        self.assertEqual(status, 404, body)
        refused = self.lab.ns(self.lab.srv, *cli, "alpha", "nosuch", check=False, timeout=30)
        self.assertEqual(refused.returncode, 1)
        self.assertIn("the daemon refused: no [[group]] is named 'nosuch'", refused.stderr)

    def test_refusals_change_nothing(self):
        cases = [("POST", "/api/v1/hosts/nosuch/next-boot", {"group": "rescue"}, NEXT_BOOT_TOKEN, 404),
                 ("POST", "/api/v1/hosts/alpha/next-boot", {"group": "nosuch"}, NEXT_BOOT_TOKEN, 400),
                 ("POST", "/api/v1/hosts/alpha/next-boot", {"group": "rescue", "x": 1}, NEXT_BOOT_TOKEN, 400),
                 ("POST", "/api/v1/hosts/alpha/next-boot", "not json", NEXT_BOOT_TOKEN, 400),
                 ("POST", "/api/v1/hosts/alpha/next-boot", {"group": "rescue"}, None, 401),
                 ("POST", "/api/v1/hosts/alpha/next-boot", {"group": "rescue"}, "wrong-token-of-16-chars", 403),
                 ("GET", "/api/v1/hosts/alpha/next-boot", None, NEXT_BOOT_TOKEN, 405),
                 ("POST", "/api/v1/hosts/alpha/next-bot", {"group": "rescue"}, NEXT_BOOT_TOKEN, 404)]
        for method, path, body, token, want in cases:
            with self.subTest(method=method, path=path, body=body, token=token):
                status, answer = self.api(method, path, body, token=token)
                self.assertEqual(status, want, answer)
                self.assertIn("error", answer)
        self.assertEqual(self.entries(), {})
        self.assertFalse(os.path.exists(os.path.join(self.lab.dir, "next-boot.json")))
        self.assertEqual(self.root_path(0x521), f"iscsi:{SERVER_IP}::::iqn.2026-11.org.pxedust:lab")


def json_file(path):
    import json
    with open(path) as f:
        return json.load(f)


if __name__ == "__main__":
    unittest.main()
