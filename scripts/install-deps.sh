#!/usr/bin/env bash
# Installs every Debian package pxedust needs to build and test (and, with --bench, to benchmark
# against its peers). Idempotent: does nothing when everything is already present.
#
# Daemon packages (tftpd-hpa, atftpd, dnsmasq, ...) must never start on this machine's real
# interfaces, so service start-up is denied through policy-rc.d for the duration of the install.
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config ccache
  libasio-dev libtomlplusplus-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libssl-dev                  # libcrypto: SHA-256 identities of base images, MD5 for iSCSI CHAP
  zlib1g-dev                  # gzip of the client initramfs
  libisal-dev                 # ISA-L: CRC32C for iSCSI header/data digests
  libgnutls28-dev             # NBD over TLS (STARTTLS)
  libext2fs-dev               # libext2fs: the NFS export reads ext4 inside base images (src/imagefs)
  libgtest-dev libgmock-dev
  clang-14 libclang-rt-14-dev
)
test_pkgs=(
  curl tftp-hpa atftp iproute2 python3
  isc-dhcp-client busybox-static python3-scapy   # DHCP clients for tests/integration/test_dhcp.py
  dnsmasq-base                            # the address server beside pxedust in proxy mode
  # tests/e2e: diskless VMs. busybox-static also goes into the client initramfs, with open-iscsi's
  # iscsistart; the guest kernel is a Debian cloud kernel fetched with `apt-get download`.
  qemu-system-x86 ipxe-qemu ipxe ovmf pxelinux syslinux-common open-iscsi cpio e2fsprogs
  # (e2fsprogs' mke2fs -d and debugfs also build the ext4 images of src/imagefs/tests)
  libiscsi-bin qemu-utils qemu-block-extra   # tests/integration/test_iscsi.py: real iSCSI initiators
  mmdebstrap openssh-client               # tests/e2e: a Debian image by `pxedust image build`, reached by ssh
  libnbd-bin fio                          # tests/integration/test_nbd.py: nbdinfo, nbdcopy, fio's nbd engine
  python3-libnbd gnutls-bin               # ... nbdsh for edge cases; certtool/psktool for TLS credentials
  libnfs-utils                            # tests/integration/test_nfs.py: nfs-ls, nfs-cat, nfs-cp (libnfs)
  prometheus                              # promtool checks the metrics pxedust exports
  wrk                                     # tests/integration/test_http.py: HTTP load with keep-alive
  chromium chromium-driver python3-selenium   # tests/integration/test_dashboard.py: the dashboard in a browser
  systemd                                 # systemd-analyze verify on packaging/systemd/pxedust.service
)
# atftpd conflicts with tftpd-hpa as a package; bench/tftp unpacks its .deb privately instead.
bench_pkgs=(
  tftpd-hpa dnsmasq-base
  linux-perf          # bench/tftp: server CPU incl. tftpd-hpa's auto-reaped per-transfer children
  libwrap0 libpcre2-8-0   # the privately unpacked atftpd's libraries
  qemu-utils nbdkit libnbd-bin fio   # bench/blockstore: qcow2 (qemu-img, qemu-nbd), nbdkit cow, fio nbd engine
  nbd-server          # bench/nbd: the reference NBD server (raw and copy-on-write)
  kea-admin kea-dhcp4-server isc-dhcp-server   # bench/dhcp: perfdhcp (in kea-admin), Kea and ISC dhcpd as peers
  tgt libiscsi-dev    # bench/iscsi: tgtd as the peer, a libiscsi load generator; bench/e2e: the reference stack
  nginx-light lighttpd   # bench/http: the peers (wrk, the load, is a test package)
  nfs-ganesha nfs-ganesha-vfs   # bench/nfs: the peer NFSv3 server (FSAL VFS; brings rpcbind)
)

want=("${build_pkgs[@]}" "${test_pkgs[@]}")
[[ "${1:-}" == "--bench" ]] && want+=("${bench_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
policy=${PXEDUST_POLICY_RC:-/usr/sbin/policy-rc.d}   # tests point it elsewhere
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null
  $SUDO chmod +x $policy
  created_policy=1
fi
# An EXIT trap's status becomes the script's: it must not end on a false test.
cleanup() {
  if [[ $created_policy == 1 ]]; then $SUDO rm -f "$policy"; fi
}
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

# A DHCP server started on a real network by accident hands out addresses to other people's machines:
# policy-rc.d kept the peers' services from starting during the install; keep them from starting at
# boot too (and stop any that started anyway); Prometheus is installed for promtool, not to run, and
# nginx, lighttpd and nbd-server only to be run by the benchmarks on loopback.
# Only services of packages installed just now.
for pkg_svc in isc-dhcp-server kea-dhcp4-server prometheus nginx-light:nginx lighttpd nbd-server; do   # package[:service]
  pkg=${pkg_svc%%:*} svc=${pkg_svc#*:}
  [[ " ${missing[*]} " == *" $pkg "* ]] || continue
  if [[ -d /run/systemd/system ]]; then
    $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true
  elif [[ -x /etc/init.d/$svc ]]; then
    $SUDO /etc/init.d/"$svc" stop >/dev/null 2>&1 || true
  fi
  if command -v systemctl >/dev/null; then $SUDO systemctl disable "$svc" >/dev/null 2>&1 || true; fi
  if command -v update-rc.d >/dev/null; then $SUDO update-rc.d "$svc" disable >/dev/null 2>&1 || true; fi
done
