// The initramfs's /init and its DHCP hook, as busybox sh scripts.
#include "initramfs/builder.hpp"

namespace pxedust::initramfs {

// Boot stages are printed as "pxedust-initramfs: STAGE key=value ..." lines on the console. A failure
// (`failed REASON`) is also posted to pxedust (POST /boot/failed from the host's address) once DHCP
// named the server, so the boot tracker, the API and the dashboard show it. Kernel command line:
//   root=iscsi:SERVER:PROTO:PORT:LUN:TARGET   RFC 4173 root-path; else the iBFT iPXE wrote; else DHCP option 17
//   root=nbd:SERVER:PORT:EXPORT               an NBD export (what pxedust's DHCP gives a host with
//                                             root_protocol = "nbd"), attached by pxedust-nbd-attach
//   root=ram:nbd:SERVER:PORT:EXPORT           the root copied into RAM from a read-only NBD export
//                                             (root_protocol = "ram": the host's base image)
//   root=SERVER:/PATH[,OPTIONS]               NFS v3, read-only, under a RAM overlay (root_protocol =
//                                             "nfs": "10.0.0.1:/images/web,port=2049,mountport=2049");
//                                             OPTIONS are the kernel's NFS mount options and pass
//                                             through (actimeo=120, ...); "nfs:" before it is allowed
//   pxedust.nbd_dead_timeout=SECONDS          how long the kernel holds an NBD root's requests while
//                                             the server is away (default 600)
//   pxedust.iface=NAME        the interface to bring up (default: the first with a link, by name)
//   pxedust.initiator=IQN     initiator name when there is no iBFT (default iqn.2026-11.org.pxedust.initiator:HOST)
//   pxedust.stop=dhcp         stop after DHCP (print the marker and power off): a network-boot smoke test
//   pxedust.onfail=shell|reboot|poweroff   what a failed boot does (default: shell on the console)
//   init=PATH                 the root's init (default /sbin/init)
const char* const kInitScript = R"SH(#!/bin/busybox sh
/bin/busybox mkdir -p /bin /sbin /proc /sys /dev /run /tmp /newroot
/bin/busybox --install -s /bin
export PATH=/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# A tmpfs, moved into the root with /dev, /proc and /sys: what DHCP said (/run/pxedust/net.env)
# stays readable there, e.g. the server to report "up" to.
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run

say() { echo "pxedust-initramfs: $*"; }
onfail=shell serverid=
fail() {
  say "failed $*"
  # Once DHCP named the server, pxedust hears why too (the host's boot shows as failed, with it).
  # Debian's busybox wget has no timeout option: it gets 5 s in the background, then is stopped.
  if [ -n "$serverid" ]; then
    wget -q -O /dev/null --post-data "$*" "http://$serverid/boot/failed" >/dev/null 2>&1 &
    w=$! n=0
    while kill -0 "$w" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    kill "$w" 2>/dev/null
  fi
  case $onfail in
    reboot) sleep 3; reboot -f ;;
    poweroff) sleep 1; poweroff -f ;;
    *) say "dropping to a shell"; exec sh ;;
  esac
}

root= iface= initiator= stop= rinit=/sbin/init nbd_dead_timeout=600
for arg in $(cat /proc/cmdline); do
  case $arg in
    root=*) root=${arg#root=} ;;
    init=*) rinit=${arg#init=} ;;
    pxedust.iface=*) iface=${arg#pxedust.iface=} ;;
    pxedust.initiator=*) initiator=${arg#pxedust.initiator=} ;;
    pxedust.stop=*) stop=${arg#pxedust.stop=} ;;
    pxedust.onfail=*) onfail=${arg#pxedust.onfail=} ;;
    pxedust.nbd_dead_timeout=*) nbd_dead_timeout=${arg#pxedust.nbd_dead_timeout=} ;;
  esac
done
say "start kernel=$(uname -r)"

for m in $(cat /etc/pxedust/modules); do
  insmod "/lib/modules/$m" 2>/dev/null
done

ip link set lo up
if [ -z "$iface" ]; then
  n=0
  while [ -z "$iface" ] && [ $n -lt 100 ]; do
    for d in /sys/class/net/*; do
      d=${d##*/}
      [ "$d" = lo ] && continue
      iface=$d
      break
    done
    [ -z "$iface" ] && { sleep 0.1; n=$((n + 1)); }
  done
fi
[ -n "$iface" ] || fail "network: no interface"
ip link set "$iface" up
say "dhcp iface=$iface"
udhcpc -i "$iface" -s /etc/pxedust/udhcpc.script -n -q -t 10 -T 2 -O rootpath >/dev/null 2>&1 \
  || fail "dhcp: no answer on $iface"
. /run/pxedust/net.env
[ -n "$hostname" ] && hostname "$hostname"
say "network iface=$iface ip=$ip host=${hostname:-none} server=${serverid:-none}"
if [ "$stop" = dhcp ]; then
  say "marker host=${hostname:-none} ip=$ip"
  poweroff -f
fi

# The root: root= or option 17 naming an NBD export or an NFS path; else the iBFT iPXE published (it
# logged in there itself); else an iSCSI root= or option 17.
[ -z "$root" ] && root=$rootpath
dev=
case $root in
  ram:nbd:*)
    # Root in RAM: the base image (a read-only NBD export) copied into a tmpfs; then no connection
    # to the server is left, and the host runs on whatever happens to it.
    rest=${root#ram:nbd:}
    server=${rest%%:*}; rest=${rest#*:}
    port=${rest%%:*}; name=${rest#*:}
    [ -n "$port" ] || port=10809
    [ -x /sbin/pxedust-nbd-attach ] || fail "ram: this initramfs has no pxedust-nbd-attach (root=$root)"
    say "ram source=nbd server=$server port=$port export=$name"
    src=$(pxedust-nbd-attach --once "$server" "$port" "$name") || fail "ram: cannot attach $name at $server:$port"
    mkdir -p /src
    mount -t ext4 -o ro "$src" /src || fail "ram: cannot mount $src"
    used=$(df -k /src | awk 'NR == 2 {print $3}')
    avail=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
    total=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    if [ $((used + 131072)) -gt "$avail" ]; then
      umount /src; pxedust-nbd-attach --detach "$src"
      fail "ram: the image needs $((used / 1024)) MiB and 128 MiB to run in; this host has $((avail / 1024)) MiB free"
    fi
    mount -t tmpfs -o "size=$((total * 9 / 10))k,mode=0755" tmpfs /newroot || fail "ram: cannot mount a tmpfs"
    say "ram copying MiB=$((used / 1024))"
    cp -a /src/. /newroot/ || fail "ram: copying the root failed"
    umount /src
    pxedust-nbd-attach --detach "$src"
    say "ram copied MiB=$((used / 1024)) free_MiB=$(($(awk '/^MemAvailable:/ {print $2}' /proc/meminfo) / 1024))"
    dev=ram
    ;;
  nfs:*|*:/*)
    # NFS: the image read-only, with a tmpfs over it (overlayfs) for whatever the host writes. Both
    # live under /run, which moves into the root: /run/pxedust/lower and /run/pxedust/rw there.
    # Debian's busybox has no NFS mount helper: the options go to the kernel as they are, so the
    # server's address is given (addr=) and locking is off (nolock: the root is read-only anyway).
    spec=${root#nfs:}
    server=${spec%%:*}; rest=${spec#*:}
    path=${rest%%,*} opts=
    [ "$rest" != "$path" ] && opts=,${rest#*,}
    say "nfs server=$server path=$path options=ro,vers=3,proto=tcp,nolock$opts"
    mkdir -p /run/pxedust/lower /run/pxedust/rw
    mount -t nfs -o "ro,vers=3,proto=tcp,nolock,addr=$server$opts" "$server:$path" /run/pxedust/lower \
      || fail "nfs: cannot mount $path from $server"
    mount -t tmpfs -o mode=0755 tmpfs /run/pxedust/rw || fail "nfs: cannot mount a tmpfs for the overlay"
    mkdir -p /run/pxedust/rw/upper /run/pxedust/rw/work
    mount -t overlay -o lowerdir=/run/pxedust/lower,upperdir=/run/pxedust/rw/upper,workdir=/run/pxedust/rw/work \
      overlay /newroot || fail "nfs: cannot mount the overlay (is overlayfs in this initramfs?)"
    dev=nfs
    ;;
  nbd:*)
    # nbd:<server>:<port>:<export>; the export name may contain ':'.
    rest=${root#nbd:}
    server=${rest%%:*}; rest=${rest#*:}
    port=${rest%%:*}; name=${rest#*:}
    [ -n "$port" ] || port=10809
    [ -x /sbin/pxedust-nbd-attach ] || fail "nbd: this initramfs has no pxedust-nbd-attach (root=$root)"
    say "nbd server=$server port=$port export=$name"
    # Attached through the kernel's netlink interface; it stays in the background and reconnects
    # when the server restarts, the kernel holding the requests meanwhile (up to nbd_dead_timeout
    # seconds), and systemd's shutdown leaves it running.
    dev=$(pxedust-nbd-attach "$server" "$port" "$name" $nbd_dead_timeout) || fail "nbd: cannot attach $name at $server:$port"
    n=0
    while [ $n -lt 200 ]; do
      [ "$(cat /sys/block/${dev#/dev/}/size 2>/dev/null)" -gt 0 ] 2>/dev/null && break
      sleep 0.1
      n=$((n + 1))
    done
    [ -b "$dev" ] && [ $n -lt 200 ] || fail "nbd: attached, but $dev has no size"
    ;;
  *)
    if [ -d /sys/firmware/ibft/target0 ]; then
      say "iscsi source=ibft target=$(cat /sys/firmware/ibft/target0/target-name 2>/dev/null)"
      iscsistart -b >/tmp/iscsistart.log 2>&1 || { cat /tmp/iscsistart.log; fail "iscsi: login from the iBFT"; }
    else
      case $root in
        iscsi:*) ;;
        *) fail "root: no iSCSI, NBD or NFS root (root=$root)" ;;
      esac
      # RFC 4173: iscsi:<server>:<protocol>:<port>:<LUN>:<targetname>; the target name may contain ':'.
      rest=${root#iscsi:}
      server=${rest%%:*}; rest=${rest#*:}
      rest=${rest#*:}
      port=${rest%%:*}; rest=${rest#*:}
      lun=${rest%%:*}; target=${rest#*:}
      [ -n "$port" ] || port=3260
      [ -n "$initiator" ] || initiator=iqn.2026-11.org.pxedust.initiator:${hostname:-$ip}
      say "iscsi source=root-path server=$server port=$port target=$target initiator=$initiator"
      iscsistart -i "$initiator" -t "$target" -g 1 -a "$server" -p "$port" >/tmp/iscsistart.log 2>&1 \
        || { cat /tmp/iscsistart.log; fail "iscsi: login to $target at $server:$port"; }
    fi
    n=0
    while [ $n -lt 200 ]; do
      for b in /sys/block/sd*; do
        [ -e "$b" ] && { dev=/dev/${b##*/}; break; }
      done
      [ -n "$dev" ] && [ -b "$dev" ] && break
      dev=
      sleep 0.1
      n=$((n + 1))
    done
    [ -n "$dev" ] || fail "iscsi: logged in, but no disk appeared"
    ;;
esac
say "disk dev=$dev"
case $dev in
  ram|nfs) ;;
  *) mount -t ext4 "$dev" /newroot || fail "root: cannot mount $dev" ;;
esac
say "root mounted dev=$dev"
for d in dev proc sys run; do
  [ -d "/newroot/$d" ] && mount --move "/$d" "/newroot/$d" 2>/dev/null
done
say "switch_root init=$rinit"
exec switch_root /newroot "$rinit"
)SH";

// udhcpc's hook: configures the interface and leaves what DHCP said in /run/pxedust/net.env.
const char* const kUdhcpcScript = R"SH(#!/bin/sh
q() { printf "%s='%s'\n" "$1" "$(printf %s "$2" | sed "s/'/'\\\\''/g")"; }
case $1 in
  deconfig) ip addr flush dev "$interface" 2>/dev/null; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    mkdir -p /run/pxedust
    { q ip "$ip"; q mask "$mask"; q router "$router"; q dns "$dns"; q hostname "$hostname"; q domain "$domain"
      q rootpath "$rootpath"; q serverid "$serverid"; q siaddr "$siaddr"
    } > /run/pxedust/net.env
    # For the root too (a root built by `pxedust image build` links /etc/resolv.conf here).
    { [ -n "$domain" ] && echo "search $domain"; for d in $dns; do echo "nameserver $d"; done; } > /run/pxedust/resolv.conf
    cp /run/pxedust/resolv.conf /etc/resolv.conf
    ;;
esac
exit 0
)SH";

}  // namespace pxedust::initramfs
