#!/usr/bin/env python3
"""Writes N active leases in the lease-file format of one DHCP server, so a run can start with a
lease database that already holds N leases (bench/dhcp/run.sh, the "growth" row).

    leasefiles.py SERVER FILE COUNT FIRST_ADDRESS SUBNET_ID

The leases go to COUNT consecutive addresses from FIRST_ADDRESS, to MACs 02:bb:xx:xx:xx:xx that
perfdhcp never uses, bound now for one day. The formats are the servers' own:
  pxedust  its journal (src/dhcp/leases.hpp): one CRC-checked line per lease
  kea      memfile CSV, schema 2.0 (Kea 2.2)
  dnsmasq  "expiry mac ip hostname client-id"
  dhcpd    ISC dhcpd.leases blocks
"""

import ipaddress
import sys
import time
import zlib


def main():
    server, path, count, first, subnet_id = sys.argv[1:6]
    count = int(count)
    first = int(ipaddress.IPv4Address(first))
    now = int(time.time())
    end = now + 86400
    out = []
    if server == "pxedust":
        out.append("# pxedust lease journal v1\n")
    elif server == "kea":
        out.append("address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n")
    elif server == "dhcpd":
        out.append("# prefilled by pxedust bench/dhcp\nauthoring-byte-order little-endian;\n")
    gmt = lambda t: time.strftime("%w %Y/%m/%d %H:%M:%S", time.gmtime(t))
    for i in range(count):
        ip = str(ipaddress.IPv4Address(first + i))
        mac = "02:bb:%02x:%02x:%02x:%02x" % ((i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255)
        if server == "pxedust":
            body = (f"lease addr={ip} state=bound kind=dynamic subnet={subnet_id} start={now} expire={end} "
                    f"client=hw:{mac} mac={mac} host= uuid=")
            out.append("%s crc=%08x\n" % (body, zlib.crc32(body.encode()) & 0xFFFFFFFF))
        elif server == "kea":
            out.append(f"{ip},{mac},,86400,{end},1,0,0,,0,\n")
        elif server == "dnsmasq":
            out.append(f"{end} {mac} {ip} * *\n")
        elif server == "dhcpd":
            out.append(f"lease {ip} {{\n  starts {gmt(now)};\n  ends {gmt(end)};\n  cltt {gmt(now)};\n"
                       f"  binding state active;\n  next binding state free;\n  hardware ethernet {mac};\n}}\n")
        else:
            sys.exit(f"leasefiles.py: unknown server {server}")
    with open(path, "w") as f:
        f.write("".join(out))


if __name__ == "__main__":
    main()
