#!/bin/sh
# Installs the Debian packages baton's lab and tests need, only when something is missing:
# iproute2 (ip, namespaces), iputils-arping (gratuitous ARP, duplicate address detection),
# iputils-ping (lab reachability checks), nftables (loss injection in tests), nginx-light (real web server),
# tcpdump (tests capture a real beacon to replay it). With --test also apache2 (the drain's test), chromium: a test opens the drill's
# HTML report in headless Chromium; and python3: the systemd notify test's stand-in for PID 1's notify socket (an
# AF_UNIX datagram socket Node cannot bind; socat would keep systemd-notify's barrier pipe open and stall it);
# and systemd, for systemd-analyze (the unit's tests) and systemd-notify (the agent's READY/WATCHDOG sender) in
# containers that lack it; faketime (libfaketime), with which the campaign and the etcd clock test step one agent's
# wall clock; and
# groff-base, with which the Debian package's test renders its man pages; etcd-server and etcd-client, for the etcd
# coordination tests.
set -eu
missing=""
if [ "${1:-}" = "--test" ]; then
  [ -x /usr/bin/chromium ] || missing="$missing chromium"
  command -v python3 >/dev/null 2>&1 || missing="$missing python3"
  command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
  # ssh and sshd: baton rehearse --client probes from another host over ssh; a test runs sshd in a namespace.
  command -v ssh >/dev/null 2>&1 || missing="$missing openssh-client"
  [ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
  # faketime brings libfaketime: the campaign's faults part and test/integration/etcd-clock.test.ts step one agent's wall
  # clock (LD_PRELOAD), not the machine's.
  command -v faketime >/dev/null 2>&1 || missing="$missing faketime"
  # curl: the client of the test that boots systemd as PID 1 with baton's unit in it.
  command -v curl >/dev/null 2>&1 || missing="$missing curl"
  # apache2: the drain's integration test moves the IP between two real Apache servers as well as two nginx.
  [ -x /usr/sbin/apache2 ] || missing="$missing apache2"
  # groff-base: the Debian package's test renders its man pages (man-db, where present, uses it too). dpkg-deb, which
  # builds the package, is in dpkg itself: neither fakeroot nor dpkg-dev is needed.
  command -v groff >/dev/null 2>&1 || missing="$missing groff-base"
  # etcd-server and etcd-client: the etcd coordination tests run a real three-member cluster in namespaces (etcd) and
  # ask it who leads (etcdctl). The package's own service is refused a start during install (policy-rc.d below).
  command -v etcd >/dev/null 2>&1 || missing="$missing etcd-server"
  command -v etcdctl >/dev/null 2>&1 || missing="$missing etcd-client"
fi
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v arping >/dev/null 2>&1 || missing="$missing iputils-arping"
command -v ping >/dev/null 2>&1 || missing="$missing iputils-ping"
[ -x /usr/sbin/nft ] || missing="$missing nftables"  # by path: ava brings a JS tool called nft onto npm's PATH
command -v tcpdump >/dev/null 2>&1 || [ -x /usr/bin/tcpdump ] || missing="$missing tcpdump"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx-light"
if [ -z "$missing" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "baton: missing Debian packages:$missing; run as root, or: sudo apt-get install$missing" >&2
  exit 1
fi
echo "baton: installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# nginx-light must not start a server in the root namespace: policy-rc.d refuses service starts during install.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
