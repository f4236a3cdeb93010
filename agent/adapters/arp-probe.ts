// The duplicate-address probe from one long-lived helper, as `arping -D` does it but without a process start and
// without arping: arping drops its capabilities at start with capset and setuid, system calls the unit's filter
// then has to allow (systemd/baton-agent.service). This helper needs neither, so a config without hooks and command
// checks runs under `SystemCallFilter=~@privileged` with no exception (agent/config/unit-sandbox.ts).
//
// The helper is Perl for the reasons of garp-sender.ts (perl-base is Essential in Debian; Socket opens AF_PACKET).
// For each request it opens a packet socket bound to ARP on the interface, so only frames that arrive after the
// probe starts are read, and:
// - refuses what arping -D refuses, in arping's words: a missing interface (the kernel's `No such device`), one that
//   is down (`Interface "eth0" is down`), one without ARP (`Interface "lo" is not ARPable`: arping exits 0 there
//   without sending, which the driver never takes for "free" either);
// - sends the frame arping -D sends (iputils 20221126, compared field by field on the wire in
//   test/integration/namespaces.test.ts): Ethernet to ff:ff:ff:ff:ff:ff from the interface's MAC, an ARP request
//   with sender MAC = the interface's, sender IP 0.0.0.0, target MAC ff:ff:ff:ff:ff:ff, target IP = the address;
//   one more each second while it listens, as arping -D -c N -w N does;
// - counts what arping's recv_pack counts in DAD mode: an ARP request or reply for this host, for everyone
//   (broadcast) or a multicast group, Ethernet/IPv4 with 6- and 4-byte addresses, whose sender IP is the address and
//   whose sender MAC is not this interface's. The first one ends the probe (arping -D quits on the first reply too).
// No Time::HiRes in perl-base: the time left comes from select(), whose remaining time Linux reports (0 when it
// timed out, what was left when a frame arrived or a signal interrupted it).
//
// For an IPv6 address, the same with neighbour discovery (RFC 4861, 4862): a neighbour solicitation from :: to the
// address's solicited-node group (ff02::1:ffXX:XXXX, Ethernet 33:33:ff:XX:XX:XX), hop limit 255, no options, as
// the kernel's own duplicate-address detection sends it; counted is a neighbour advertisement for the address, hop
// limit 255, from another MAC, whose holder is its target link-layer option (else the Ethernet source).
//
// Protocol, one line each way: `probe IFACE A.B.C.D LISTEN_MS` or `probe6 IFACE HEX32 LISTEN_MS` (the IPv6 address
// as 32 hex digits) → `free`, `taken MAC` or `error WHY`.

import {isIPv4} from 'node:net';
import {BatonError} from '../errors.js';
import {helperLineError, ICMP6_CHECKSUM, INTERFACE_NAME, PerlLineHelper} from './helper-process.js';
import {ipv6Hex} from '../net/ip-address.js';

// 17 = AF_PACKET, 0x0806 = ETH_P_ARP, 0x8933 = SIOCGIFINDEX, 0x8913 = SIOCGIFFLAGS, 0x8927 = SIOCGIFHWADDR (the same
// numbers on every Linux architecture). IFF_UP = 0x1, IFF_LOOPBACK = 0x8, IFF_NOARP = 0x80. struct ifreq is 40 bytes:
// the name in 16, then the index (int), the flags (short) or a sockaddr (family = hardware type, then the MAC).
// struct sockaddr_ll: family, protocol (network order), ifindex, hatype, pkttype, halen, address[8]; pkttype 0..2 =
// PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST (not PACKET_OTHERHOST, not PACKET_OUTGOING), arping's filter.
const SCRIPT = String.raw`
use strict; use warnings; use Socket;
$| = 1;
my $all = "\xff" x 6;
# The interface's index and MAC, or an error line: what both probes refuse, in arping's words.
sub link_of {
  my ($s, $if, $kind) = @_;
  my $ifr = pack('a16 x24', $if);
  ioctl($s, 0x8933, $ifr) or return "error $if: $!";
  my $index = unpack('x16 i', $ifr);
  $ifr = pack('a16 x24', $if);
  ioctl($s, 0x8913, $ifr) or return "error $if: $!";
  my $flags = unpack('x16 s', $ifr);
  return "error Interface \"$if\" is down" unless $flags & 0x1;
  return "error Interface \"$if\" is not $kind" if $flags & 0x88;
  $ifr = pack('a16 x24', $if);
  ioctl($s, 0x8927, $ifr) or return "error $if: $!";
  my ($hatype, $mac) = unpack('x16 S a6', $ifr);
  return "error Interface \"$if\" is not Ethernet (hardware type $hatype)" unless $hatype == 1;
  return ($index, $mac);
}
# Sends $frame now and once more each second while it listens $ms; returns the first frame for which $taken gives
# a MAC, as 'taken MAC', or 'free'.
sub listen_for {
  my ($s, $if, $index, $frame, $to, $ms, $taken) = @_;
  my $left = $ms / 1000;
  my $due = $left;
  while ($left > 0) {
    if ($due >= $left) {
      send($s, $frame, 0, $to) or return "error send on $if: $!";
      $due -= 1;
    }
    my $span = $due > 0 ? $left - $due : $left;
    my $rin = ''; vec($rin, fileno($s), 1) = 1;
    my ($found, $rest) = select(my $rout = $rin, undef, undef, $span);
    $left -= $span - $rest;
    next unless $found > 0;
    my $from = recv($s, my $in, 1500, 0);
    return "error receive on $if: $!" unless defined $from;
    my (undef, undef, $at, undef, $kind) = unpack('S n i S C', $from);
    next if $at != $index || $kind > 2;
    my $mac = $taken->($in);
    return 'taken ' . join(':', map { sprintf '%02x', $_ } unpack('C6', $mac)) if defined $mac;
  }
  return 'free';
}
sub probe {
  my ($if, $tpa, $ms) = @_;
  socket(my $s, 17, SOCK_RAW, 0) or return "error cannot open a packet socket: $!";
  my ($index, $mac) = link_of($s, $if, 'ARPable');
  return $index unless defined $mac;
  bind($s, pack('S n i S C C a8', 17, 0x0806, $index, 0, 0, 0, '')) or return "error bind on $if: $!";
  my $to = pack('S n i S C C a8', 17, 0x0806, $index, 1, 0, 6, $all);
  my $frame = $all . $mac . pack('n n n C C n', 0x0806, 1, 0x0800, 6, 4, 1) . $mac . "\0\0\0\0" . $all . $tpa;
  return listen_for($s, $if, $index, $frame, $to, $ms, sub {
    my ($in) = @_;
    return undef if length($in) < 42;
    my ($hrd, $pro, $hln, $pln, $op, $sha, $spa) = unpack('x14 n n C C n a6 a4', $in);
    return undef if $hrd != 1 || $pro != 0x0800 || $hln != 6 || $pln != 4 || ($op != 1 && $op != 2);
    return undef if $spa ne $tpa || $sha eq $mac;
    return $sha;
  });
}
${ICMP6_CHECKSUM}
sub probe6 {
  my ($if, $target, $ms) = @_;
  socket(my $s, 17, SOCK_RAW, 0) or return "error cannot open a packet socket: $!";
  my ($index, $mac) = link_of($s, $if, 'capable of neighbour discovery');
  return $index unless defined $mac;
  bind($s, pack('S n i S C C a8', 17, 0x86dd, $index, 0, 0, 0, '')) or return "error bind on $if: $!";
  my $group = pack('H26', 'ff0200000000000000000001ff') . substr($target, 13, 3);
  my $group_mac = "\x33\x33" . substr($group, 12, 4);
  my $to = pack('S n i S C C a8', 17, 0x86dd, $index, 1, 0, 6, $group_mac);
  my $unspecified = "\0" x 16;
  my $message = pack('C C n N', 135, 0, 0, 0) . $target;
  substr($message, 2, 2) = pack('n', icmp6_checksum($unspecified, $group, $message));
  my $frame = $group_mac . $mac . pack('n N n C C', 0x86dd, 0x60000000, length($message), 58, 255) . $unspecified . $group . $message;
  return listen_for($s, $if, $index, $frame, $to, $ms, sub {
    my ($in) = @_;
    return undef if length($in) < 78 || substr($in, 6, 6) eq $mac;
    my ($next, $hops) = unpack('x20 C C', $in);
    my ($type, $code, $tgt) = unpack('x54 C C x6 a16', $in);
    return undef if $next != 58 || $hops != 255 || $type != 136 || $code != 0 || $tgt ne $target;
    my $options = substr($in, 78);
    while (length($options) >= 8) {
      my ($kind, $units) = unpack('C C', $options);
      last if $units == 0;
      return substr($options, 2, 6) if $kind == 2;
      $options = substr($options, $units * 8);
    }
    return substr($in, 6, 6);
  });
}
while (my $line = <STDIN>) {
  chomp $line;
  my ($verb, $if, $ip, $ms) = split / /, $line;
  if (defined $ms && $verb eq 'probe6' && $ip =~ /^[0-9a-f]{32}$/ && $ms =~ /^\d+$/) { print probe6($if, pack('H32', $ip), $ms), "\n"; next }
  my @octets = defined $ip ? $ip =~ /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/ : ();
  if (!defined $ms || $verb ne 'probe' || @octets != 4 || $ms !~ /^\d+$/) { print "error not a command: $line\n"; next }
  print probe($if, pack('C4', @octets), $ms), "\n";
}
`;

/** The longest a probe may listen: arping -D with the driver's settings listens at most a few seconds too. */
export const MAX_LISTEN_MS = 10_000;
// A probe answers within its listening time; this much longer means the helper is stuck, and it is replaced.
const STUCK_AFTER_MS = 2000;
const CLOSE_WAIT_MS = 500;
const TAKEN_LINE = /^taken ([0-9a-f]{2}(?::[0-9a-f]{2}){5})$/;

/** What a probe found: nobody answered for the address, or a host did, with this MAC. */
export type ArpProbeAnswer = {readonly inUse: false} | {readonly inUse: true; readonly mac: string};

interface Pending {
  readonly text: string;
  readonly settle: (error: BatonError | undefined, answer?: ArpProbeAnswer) => void;
}

export interface ArpProberOptions {
  /** How to start perl, e.g. ['ip', 'netns', 'exec', 'ns1', 'perl'] in tests; default ['perl']. */
  readonly command?: readonly [string, ...string[]];
  /** Beyond a probe's listening time, how long until the helper counts as stuck (default 2000 ms: an answer is one
   *  write after the listening time, so this much later the helper is stuck). */
  readonly stuckAfterMs?: number;
}

export class ArpProber {
  /** One helper per family: a Perl helper answers one request at a time, and a dual-stack service probes both of its
   *  addresses at once. Serially, the two probes took 300 ms, twice the lead the early probe has with tuned timers,
   *  and a dual-stack failover was ~150 ms slower than either family alone (bench --family dual). */
  readonly #helpers: Readonly<Record<4 | 6, PerlLineHelper<ArpProbeAnswer, Pending>>>;

  constructor(options: ArpProberOptions = {}) {
    const helper = (): PerlLineHelper<ArpProbeAnswer, Pending> => new PerlLineHelper<ArpProbeAnswer, Pending>({
      command: options.command ?? ['perl'], script: SCRIPT, name: 'the duplicate-address probe helper (perl)',
      timeoutMs: options.stuckAfterMs ?? STUCK_AFTER_MS,
      answer: (head, line) => {
        if (line === 'free') {
          head.settle(undefined, {inUse: false});
          return;
        }
        const taken = TAKEN_LINE.exec(line);
        if (taken?.[1] !== undefined) {
          head.settle(undefined, {inUse: true, mac: taken[1]});
          return;
        }
        head.settle(helperLineError('duplicate-address probe', head.text, line, 2));
      },
    });
    this.#helpers = {4: helper(), 6: helper()};
  }

  /** Why the helper cannot run on this host (its program is missing or not executable), once that is known. */
  get unusable(): string | undefined {
    return this.#helpers[4].unusable ?? this.#helpers[6].unusable;
  }

  /** Starts the helpers of these families now (the service's), so the first probe does not pay for it. Never throws
   *  (probe() reports). */
  warm(families: readonly (4 | 6)[] = [4]): void {
    for (const family of new Set(families)) this.#helpers[family].warm();
  }

  /**
   * Asks the LAN whether a host answers ARP for `address` on `iface`, listening `listenMs` (one probe, and one more
   * per further second). Not idempotent in effect (a frame leaves each time) but harmless: a DAD probe changes no
   * host's neighbour table. Throws BatonError COMMAND_FAILED when the probe could not be made (details.stderr: the
   * kernel's or arping's words, e.g. "No such device", `Interface "eth0" is down`); never reports such a probe free.
   */
  probe(iface: string, address: string, listenMs: number): Promise<ArpProbeAnswer> {
    const hex = isIPv4(address) ? undefined : ipv6Hex(address);
    if (!INTERFACE_NAME.test(iface) || (!isIPv4(address) && hex === undefined) || !Number.isInteger(listenMs) || listenMs < 1 ||
      listenMs > MAX_LISTEN_MS) {
      return Promise.reject(new BatonError('COMMAND_FAILED', 'not a duplicate-address probe to make: interface ' +
        `${JSON.stringify(iface)}, address ${JSON.stringify(address)}, listening ${listenMs} ms (expected 1..${MAX_LISTEN_MS})`));
    }
    const text = `probe ${iface} ${address} ${listenMs}`;
    const line = hex === undefined ? text : `probe6 ${iface} ${hex} ${listenMs}`;
    // The timer runs from the request: a probe waiting behind another one (the driver's are 150 ms) still ends
    // well within its own listening time plus the margin.
    const helper = this.#helpers[hex === undefined ? 4 : 6];
    const timeoutMs = listenMs + helper.timeoutMs;
    return helper.request({text}, `${line}\n`, () => new BatonError('COMMAND_TIMEOUT',
      `the duplicate-address probe for ${address} on ${iface} did not answer within ${timeoutMs} ms; ` +
      'the helper is restarted'), timeoutMs);
  }

  /** Ends the helpers and waits, at most `waitMs`, for them to be gone; the next probe starts a new one. */
  async close(waitMs = CLOSE_WAIT_MS): Promise<void> {
    await Promise.all([this.#helpers[4].close(waitMs), this.#helpers[6].close(waitMs)]);
  }
}
