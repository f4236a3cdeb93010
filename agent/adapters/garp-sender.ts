// Gratuitous ARP from one long-lived helper, so that announcing the service IP after it is added costs a write to a
// pipe, not a process start: arping is a new process per announcement (5-15 ms at idle, far more on a busy host,
// when every millisecond before the announcement is a millisecond clients send to the host that gave the IP up).
//
// Node has no raw sockets, so the helper is a small Perl program: perl-base is Essential in Debian (every Debian
// host has it) and its Socket module opens an AF_PACKET socket, the same one arping uses. For each request it
// looks up the interface's index and MAC (SIOCGIFINDEX, SIOCGIFHWADDR: always this network namespace's, unlike a
// sysfs read) and sends the two forms arping -U and arping -A send, to the Ethernet broadcast address:
//   request: sender = target = the IP, target MAC ff:ff:ff:ff:ff:ff
//   reply:   sender = target = the IP, target MAC = the sender MAC
// Linux takes both as gratuitous (arp_is_garp) and updates an entry it has even within its locktime; measured in
// the lab, each form alone moves a client's neighbour entry. Where perl cannot be started, the driver uses arping.
//
// For an IPv6 address it sends what the kernel sends when it defends an address (compared field for field in
// test/integration/namespaces.test.ts): an unsolicited neighbour advertisement from the address to all nodes
// (ff02::1, Ethernet 33:33:00:00:00:01), hop limit 255, Override flag, the address as target and the MAC as target
// link-layer option. A client's entry takes the new MAC (state STALE).
//
// Protocol, one line each way: `garp IFACE A.B.C.D` → `sent 2 MAC`, `na IFACE HEX32` (the IPv6 address as 32 hex
// digits) → `sent 1 MAC`, or `error WHY`.

import {isIPv4} from 'node:net';
import {BatonError} from '../errors.js';
import {helperLineError, ICMP6_CHECKSUM, INTERFACE_NAME, PerlLineHelper} from './helper-process.js';
import {ipv6Hex} from '../net/ip-address.js';

// 17 = AF_PACKET, 0x8933 = SIOCGIFINDEX, 0x8927 = SIOCGIFHWADDR (the same numbers on every Linux architecture).
// struct ifreq is 40 bytes: the name in 16, then the index (int) or a sockaddr (family, then the MAC).
// struct sockaddr_ll: family, protocol (network order), ifindex, hatype, pkttype, halen, address[8].
const SCRIPT = String.raw`
use strict; use warnings; use Socket;
$| = 1;
socket(my $s, 17, SOCK_RAW, 0) or die "cannot open a packet socket: $!\n";
${ICMP6_CHECKSUM}
while (my $line = <STDIN>) {
  chomp $line;
  my ($verb, $if, $ip) = split / /, $line;
  my $v6 = defined $ip && $verb eq 'na' && $ip =~ /^[0-9a-f]{32}$/;
  if (!$v6 && (!defined $ip || $verb ne 'garp' || $ip !~ /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/)) { print "error not a command: $line\n"; next }
  my $ifr = pack('a16 x24', $if);
  if (!ioctl($s, 0x8933, $ifr)) { print "error $if: $!\n"; next }
  my $index = unpack('x16 i', $ifr);
  $ifr = pack('a16 x24', $if);
  if (!ioctl($s, 0x8927, $ifr)) { print "error $if: $!\n"; next }
  my $mac = unpack('x18 a6', $ifr);
  my @frames;
  my $to;
  if ($v6) {
    my $target = pack('H32', $ip);
    my $nodes = pack('H32', 'ff020000000000000000000000000001');
    my $message = pack('C C n N', 136, 0, 0, 0x20000000) . $target . pack('C C', 2, 1) . $mac;
    substr($message, 2, 2) = pack('n', icmp6_checksum($target, $nodes, $message));
    my $nodes_mac = pack('H12', '333300000001');
    $to = pack('S n i S C C a8', 17, 0x86dd, $index, 1, 0, 6, $nodes_mac);
    @frames = ($nodes_mac . $mac . pack('n N n C C', 0x86dd, 0x60000000, length($message), 58, 255) . $target . $nodes . $message);
  } else {
    my $spa = pack('C4', $1, $2, $3, $4);
    my $all = "\xff" x 6;
    $to = pack('S n i S C C a8', 17, 0x0806, $index, 1, 0, 6, $all);
    my $head = $all . $mac . pack('n n n C C', 0x0806, 1, 0x0800, 6, 4);
    @frames = ($head . pack('n', 1) . $mac . $spa . $all . $spa, $head . pack('n', 2) . $mac . $spa . $mac . $spa);
  }
  my $sent = 0;
  for my $frame (@frames) {
    if (!send($s, $frame, 0, $to)) { print "error send on $if: $!\n"; last }
    $sent++;
  }
  print "sent $sent ", join(':', map { sprintf '%02x', $_ } unpack('C6', $mac)), "\n" if $sent == @frames;
}
`;

// A send is one system call; this long means the helper is stuck, and it is replaced.
const DEFAULT_TIMEOUT_MS = 2000;
const CLOSE_WAIT_MS = 500;
const SENT_LINE = /^sent ([12]) ([0-9a-f:]{17})$/;

interface Pending {
  readonly text: string;
  /** Frames the request sends: 2 gratuitous ARP (request and reply), 1 neighbour advertisement. */
  readonly frames: number;
  /** What is sent, in words for an error message. */
  readonly what: string;
  readonly settle: (error: BatonError | undefined, mac?: string) => void;
}

export interface GarpSenderOptions {
  /** How to start perl, e.g. ['ip', 'netns', 'exec', 'ns1', 'perl'] in tests; default ['perl']. */
  readonly command?: readonly [string, ...string[]];
  readonly timeoutMs?: number;
}

export class GarpSender {
  readonly #helper: PerlLineHelper<string, Pending>;

  constructor(options: GarpSenderOptions = {}) {
    this.#helper = new PerlLineHelper<string, Pending>({
      command: options.command ?? ['perl'], script: SCRIPT, name: 'the gratuitous ARP helper (perl)',
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      answer: (head, line) => {
        const sent = SENT_LINE.exec(line);
        if (sent !== null && Number(sent[1]) === head.frames) {
          head.settle(undefined, sent[2]);
          return;
        }
        head.settle(helperLineError(head.what, head.text, line));
      },
    });
  }

  /** Why the helper cannot run on this host (its program is missing or not executable), once that is known. */
  get unusable(): string | undefined {
    return this.#helper.unusable;
  }

  /** Starts the helper now, so the first announcement does not pay for it. Never throws (send() reports). */
  warm(): void {
    this.#helper.warm();
  }

  /**
   * Announces `address` on `iface`: for IPv4 a gratuitous ARP request and reply, for IPv6 one unsolicited neighbour
   * advertisement. Resolves with the MAC they carried once all have left; throws BatonError COMMAND_FAILED
   * (details.stderr: the kernel's words, e.g. "No such device").
   */
  send(iface: string, address: string): Promise<string> {
    const hex = isIPv4(address) ? undefined : ipv6Hex(address);
    if (!INTERFACE_NAME.test(iface) || (!isIPv4(address) && hex === undefined)) {
      return Promise.reject(new BatonError('COMMAND_FAILED', `not an announcement to send: interface ${JSON.stringify(iface)}, address ${JSON.stringify(address)}`));
    }
    const what = hex === undefined ? 'gratuitous ARP' : 'unsolicited neighbour advertisement';
    const text = hex === undefined ? `garp ${iface} ${address}` : `na ${iface} ${address}`;
    const line = hex === undefined ? text : `na ${iface} ${hex}`;
    return this.#helper.request({text, what, frames: hex === undefined ? 2 : 1}, `${line}\n`, () => new BatonError('COMMAND_TIMEOUT',
      `${what} for ${address} on ${iface} was not sent within ${this.#helper.timeoutMs} ms; the helper is restarted`));
  }

  /** Ends the helper and waits, at most `waitMs`, for it to be gone; the next send() starts a new one. */
  async close(waitMs = CLOSE_WAIT_MS): Promise<void> {
    await this.#helper.close(waitMs);
  }
}
