// When this agent's own recent datagrams left (monotonic ms), by sequence number: what turns the peer's
// acknowledgements into round-trip times and, with heartbeat.replay_protection acknowledged, into proof that the
// peer is alive now. A fixed-size ring: memory does not grow with uptime or with a switch's retries.

// Beacons, requests and replies share the counter. The ring holds 4 datagrams per beacon interval of dead_after_ms
// (a beacon, and a request and its reply resent every 100 ms at most; at the 200 ms default that is 20 entries for
// the 1000 ms default) plus room for a switch's bursts; an acknowledgement of a datagram that fell out of the ring
// proves nothing, which is the conservative side: it can only make a live peer's proof older, never a recording's
// newer.
const PER_INTERVAL = 4;
const HEADROOM = 256;
// dead_after 600 s at the 10 ms minimum interval would ask for 240,256 entries; 65,536 (1 MB) is plenty for any
// acknowledgement that is not itself older than a minute or so at that pace.
const MAX_ENTRIES = 65_536;

export class SentLog {
  readonly #seqs: Float64Array;
  readonly #times: Float64Array;

  constructor(deadAfterMs: number, intervalMs: number) {
    const size = Math.min(MAX_ENTRIES, Math.ceil(deadAfterMs / intervalMs) * PER_INTERVAL + HEADROOM);
    this.#seqs = new Float64Array(size);
    this.#times = new Float64Array(size);
  }

  /** Our datagram `seq` left at `at` (monotonic ms). Sequence numbers start at 1 and only go up. */
  record(seq: number, at: number): void {
    const slot = seq % this.#seqs.length;
    this.#seqs[slot] = seq;
    this.#times[slot] = at;
  }

  /** When our datagram `seq` left, while it is still in the ring; undefined for one never sent or long gone. */
  sentAt(seq: number): number | undefined {
    const slot = seq % this.#seqs.length;
    return seq >= 1 && this.#seqs[slot] === seq ? this.#times[slot] : undefined;
  }
}
