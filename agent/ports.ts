// Boundary interfaces between baton's pure core and the outside world, and the value types they speak.
// No execa, dgram or systeminformation type crosses these; fakes in test/fakes implement them.

import type {RequestTally} from './request-evidence.js';
import type {FileFacts} from './config/unit-file-access.js';
import type {ServiceIp} from './state-machine.js';

/** Monotonic milliseconds, never Date.now(): a wall-clock step must not fake a dead peer. */
export interface Clock {
  /** Monotonic ms since an arbitrary origin. */
  now(): number;
  /** Wall-clock ms since the epoch; only for the sent-at field of datagrams and for humans. */
  wallNow(): number;
  /**
   * Ms since boot, counting the time the machine was suspended (CLOCK_BOOTTIME), never stepped. For deadlines set by
   * something that keeps running while this machine sleeps (an etcd lease, on the members' clocks): now() stops during
   * a suspend of the VM or laptop, this does not.
   */
  bootNow(): number;
  /** Resolves after `ms`; rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface ReceivedDatagram {
  readonly datagram: Uint8Array;
  /** Sender address (no port). */
  readonly from: string;
  readonly fromPort: number;
}

export interface BeaconTransport {
  /** Sends one datagram to the peer. Throws BatonError PEER_UNREACHABLE when the kernel refuses it. */
  send(datagram: Uint8Array): Promise<void>;
  /** Datagrams as they arrive; ends when closed. */
  receive(): AsyncIterable<ReceivedDatagram>;
  /**
   * Resolves once every datagram that had reached this host's socket when called (read or still in the kernel's
   * buffer) has been through receive()'s reader, or was dropped; at once when closed. So a judgement made after it
   * ("the peer sent nothing for dead_after_ms") is made on everything that arrived, not on what a busy loop has read.
   */
  caughtUp(): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
  /** Datagrams dropped unread because the agent fell behind (its receive queue was full), e.g. under a flood. */
  readonly dropped: number;
}

/**
 * The beacons between etcd hosts (coordination/host-beacons.ts): one UDP socket bound to this host's beacon address,
 * sending to any of the other hosts' addresses.
 */
export interface BeaconSocket {
  /** Sends one datagram to `address` (the socket's port). Throws BatonError PEER_UNREACHABLE when the kernel refuses it. */
  send(datagram: Uint8Array, address: string): Promise<void>;
  /** Datagrams as they arrive; ends when closed. */
  receive(): AsyncIterable<ReceivedDatagram>;
  /** Idempotent. */
  close(): Promise<void>;
}

/** Every method is idempotent: adding a present address or downing a down link succeeds. */
export interface NetworkDriver {
  /** Whether the address is configured on the service interface, as the kernel reports it now.
   *  Throws INTERFACE_MISSING when the interface does not exist. */
  hasAddress(ip: ServiceIp): Promise<boolean>;
  /** Adds the address to the service interface; succeeds if already there. Throws COMMAND_FAILED. */
  addAddress(ip: ServiceIp): Promise<void>;
  /** Removes the address; succeeds if already gone. Throws COMMAND_FAILED. */
  removeAddress(ip: ServiceIp): Promise<void>;
  /** Brings a link up or down; succeeds if already so. Throws COMMAND_FAILED / INTERFACE_MISSING. */
  setLink(iface: string, up: boolean): Promise<void>;
  /** Whether the link is administratively up. Throws INTERFACE_MISSING. */
  isLinkUp(iface: string): Promise<boolean>;
  /** Gratuitous ARP in request and reply form (unsolicited NA for IPv6). Throws COMMAND_FAILED. */
  announce(ip: ServiceIp): Promise<void>;
  /** Duplicate address detection: does another host answer ARP for the address? Throws COMMAND_FAILED. */
  isAddressInUse(ip: ServiceIp): Promise<boolean>;
  /**
   * Cheap, for the once-a-second observation: whether the address is on the service interface and that
   * interface is up and running (so it answers for it), without spawning a process. Never throws: an
   * interface that is missing is simply not serving.
   */
  isServing(ip: ServiceIp): Promise<boolean>;
  /**
   * Cheap, as isServing: whether the interface is up and running (it has a carrier), without spawning a process.
   * Never throws: a missing interface is not running.
   */
  isRunning(iface: string): Promise<boolean>;
}

/**
 * What the drain of a planned switch needs of a host's kernel, so that connections open when the service IP moves
 * finish on the host that owns them (DESIGN: "A switch that no user notices"). Every method is idempotent, and every
 * change it makes is one that removeLeftovers() finds and takes back, so a crash leaves nothing that a restart
 * cannot clear.
 */
export interface DrainDriver {
  /** Why this host cannot drain (a missing program, a kernel without the needed nftables parts), or undefined. */
  unavailable(): Promise<string | undefined>;
  /** This host's own address on the service interface (not the service IP): where the taker sends the strays. */
  ownAddress(ip: ServiceIp): Promise<string | undefined>;
  /** The giver: keep accepting packets for the service IP (the address on `lo`) without answering ARP for it, and
   *  without sending ARP that names it as the sender. `own` is the address to name instead. Throws COMMAND_FAILED. */
  hold(ip: ServiceIp, own: string): Promise<void>;
  /** Whether hold() is in force (both its parts). */
  isHolding(ip: ServiceIp): Promise<boolean>;
  /** Takes hold() back; succeeds when nothing is held. */
  unhold(ip: ServiceIp): Promise<void>;
  /** The taker: TCP packets to the service IP that open no connection (not SYN) and find no socket of their own
   *  here (only a listener) are sent on to `giver`, which owns their connection. `giver` is of ip's family; a
   *  dual-stack service calls it once per address. Throws COMMAND_FAILED. */
  forward(ip: ServiceIp, giver: string): Promise<void>;
  /** Whether forward() is in force for ip's family. */
  isForwarding(ip: ServiceIp): Promise<boolean>;
  /** Takes every forward() back; succeeds when nothing forwards. */
  unforward(): Promise<void>;
  /** TCP connections whose local address is the service IP and that still carry data here (established, or
   *  closing with data unacknowledged), read from the kernel without spawning a process. */
  openConnections(ip: ServiceIp): Promise<number>;
  /** Takes back whatever a drain left on this host (after a crash): returns what it removed, in words. */
  removeLeftovers(ip: ServiceIp): Promise<string[]>;
}

/** Drivers that record the commands they would run instead of running them, for --dry-run. */
export interface RecordingDrivers {
  readonly network: NetworkDriver;
  readonly drain: DrainDriver;
  commands(): string[];
}

export interface CommandOptions {
  /** Stop the program (SIGTERM, then SIGKILL) and throw COMMAND_TIMEOUT after this long. */
  readonly timeoutMs?: number;
  /** Send SIGINT after this long and judge the exit as usual: for programs that finish and report on an
   *  interrupt, like arping (its probe can otherwise not listen less than 1 s). Dying of the signal is COMMAND_FAILED. */
  readonly interruptAfterMs?: number;
  /** The program's whole environment, nothing inherited from the agent. Absent: the agent's own, with LC_ALL=C. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface CommandRunner {
  /** Runs a program with an argument array (never a shell); resolves with stdout.
   *  Throws BatonError COMMAND_FAILED (non-zero exit, with stderr and exitCode in cause) or COMMAND_TIMEOUT. */
  run(file: string, args: readonly string[], options?: CommandOptions): Promise<string>;
}

/** What survives a restart (the switch journal is kept apart, in JournalStore). */
export interface PersistentState {
  /** The epoch of the last IP acquisition. */
  readonly epoch: number;
  /** Released by a planned switch: stays hands-off after a restart too, until `baton resume`. */
  readonly released?: boolean;
}

export interface StateStore {
  /** undefined when nothing was saved yet. Throws when the file exists but is unreadable or corrupt. */
  load(): Promise<PersistentState | undefined>;
  /** Atomic: write a temp file, fsync, rename. */
  save(state: PersistentState): Promise<void>;
}

/** Follows a web server's access log (Common or Combined Log Format, as nginx and Apache write by default). */
/**
 * New TCP connections to the service IP from another host, on the service interface, counted by the kernel: the
 * proof, beside the access log's requests, that clients reach the service IP on this host (the common and combined
 * log formats do not show the address a request was sent to). Whatever start() adds, stop() and removeLeftovers()
 * take back.
 */
export interface ArrivalCounter {
  /** Starts counting from zero, connections to any of `ips` (the service's addresses); `excluded` are hosts whose
   *  connections are not clients' (the peer). */
  start(ips: readonly ServiceIp[], excluded: readonly string[]): Promise<void>;
  /** Connections counted since start(), to all the addresses together. */
  count(): Promise<number>;
  stop(): Promise<void>;
  /** At agent start: removes a counter an interrupted switch left; true when there was one. */
  removeLeftovers(): Promise<boolean>;
}

/** What preflight learnt from the access log's last lines. */
export interface AccessLogCheck {
  /** Recent lines read (0: the log is empty). */
  readonly sampled: number;
  /** Of those, the lines in the configured format. */
  readonly parsed: number;
  /** Whether the lines show the address each request was sent to (else a request to another address counts too). */
  readonly showsLocalAddress: boolean;
}

export interface AccessLogWatcher {
  /**
   * Whether confirm-traffic can work: the log can be read now and its recent lines are in the configured format.
   * For preflight. Throws BatonError ACCESS_LOG_UNREADABLE naming the file, what is wrong and the fix.
   */
  check(): Promise<AccessLogCheck>;
  /**
   * Judges requests appended to the log from the moment of the call on, whose timestamp is at or after
   * `afterWallMs` (wall-clock ms; the log has second resolution): evidence of a client, or excluded with a reason
   * (request-evidence.ts); `peerAddresses`, the other host's own addresses as it told them, are excluded like this
   * host's. Yields the running tally each time it changes; ends when `signal` aborts.
   * Survives rotation (rename + new file) and truncation. Throws ACCESS_LOG_UNREADABLE when the log vanishes
   * for longer than a rotation takes, or cannot be read.
   */
  countRequests(afterWallMs: number, signal: AbortSignal, peerAddresses?: readonly string[]): AsyncIterable<RequestTally>;
}

/** What preflight compares between the two hosts. */
export interface HostInfo {
  readonly hostname: string;
  readonly os: {readonly distro: string; readonly release: string; readonly kernel: string; readonly arch: string};
  /** Installed versions of the software that matters to a web service, by name; absent when not installed. */
  readonly versions: Readonly<Record<string, string>>;
  /** 1-minute load average divided by the number of cores (1.0 = all cores busy). */
  readonly loadPerCore: number;
  readonly memory: {readonly totalBytes: number; readonly availableBytes: number};
}

export interface HostInfoSource {
  /** Collects this host's HostInfo; never throws for a missing program (it is simply absent from versions). */
  collect(): Promise<HostInfo>;
}

/** The switch as one host saw it, written before each of its steps so a restart knows what it had done. */
export interface SwitchJournal {
  readonly switchId: string;
  readonly side: 'giver' | 'taker';
  /** Whether this host was running the switch (the operator asked here). */
  readonly coordinator: boolean;
  /** Boot id of the peer when the switch began: a different one later means the peer restarted mid-switch. */
  readonly peerBoot: string;
  /** The epoch the taker holds the IP under once it is up. */
  readonly epoch: number;
  /** This host's steps that were applied and verified, in order. */
  readonly applied: readonly string[];
  /** This host's step being applied when the journal was written, if any. */
  readonly pending: string | undefined;
  readonly phase: 'forward' | 'rollback';
  readonly startedAtWall: number;
}

export interface JournalStore {
  /** undefined when no switch is recorded. Throws STATE_INVALID when the file is unreadable or corrupt. */
  load(): Promise<SwitchJournal | undefined>;
  /** Atomic and durable (temp file, fsync, rename, fsync dir). Throws when the disk refuses. */
  save(journal: SwitchJournal): Promise<void>;
  /** Removes the journal; succeeds when there is none. */
  clear(): Promise<void>;
}

/**
 * The service manager that started the agent (systemd with Type=notify), told what the agent does. Not a
 * transport to trust: every method is fire-and-report; a manager that is absent makes each one do nothing.
 */
export interface ServiceManager {
  /** Start-up is done: sockets bound, config read, state decided (READY=1), with a one-line status.
   *  Throws COMMAND_FAILED / COMMAND_TIMEOUT when the message could not be delivered. */
  ready(status: string): Promise<void>;
  /** The agent's event loop is alive (WATCHDOG=1). Throws like ready(). */
  watchdog(): Promise<void>;
  /** A new one-line status for `systemctl status` (STATUS=). Throws like ready(). */
  status(text: string): Promise<void>;
  /** A clean stop has begun (STOPPING=1). Throws like ready(). */
  stopping(): Promise<void>;
}

/**
 * What the host check (host-check.ts) reads of this host. Nothing here changes anything; each method answers for
 * the moment it is called.
 */
export interface HostProbe {
  /** Every network interface by name (down ones too), with the addresses on it. */
  interfaces(): Promise<ReadonlyMap<string, readonly string[]>>;
  /** stat(2) of a path, following links, with the owner's and group's names; the Error (with its `code`) else. */
  stat(path: string): Promise<FileFacts | Error>;
  /** The last lines of a log file as this process reads it (at most a few dozen); the Error (with its `code`) else. */
  lastLines(path: string): Promise<readonly string[] | Error>;
  /** Where a program is found on PATH (an executable regular file), undefined when it is not. */
  findProgram(name: string): Promise<string | undefined>;
  /** Whether IPv6 is off on the interface (its disable_ipv6 is 1, or the kernel has no IPv6 at all). */
  ipv6Disabled(iface: string): Promise<boolean>;
  /** The PATH searched, for messages. */
  readonly path: string;
}

/** An etcd lease: its id (int64, kept as decimal text, beyond a number's exact range) and the TTL etcd granted. */
export interface Lease {
  readonly id: string;
  /** The TTL etcd granted, in seconds: the one asked for, or etcd's minimum when that was below it. */
  readonly ttlS: number;
}

/** A key as etcd stores it. */
export interface StoredKey {
  readonly key: string;
  readonly value: string;
  /** The revision of the key's last write: the epoch of whoever wrote it. */
  readonly modRevision: number;
  /** The lease the key lives under, '0' for none. */
  readonly lease: string;
}

export type CoordinationEvent =
  | {readonly type: 'put'; readonly key: StoredKey}
  /** The key was deleted, or its lease expired or was revoked; `modRevision` is the revision of the deletion. */
  | {readonly type: 'delete'; readonly key: string; readonly modRevision: number};

/** A transaction's condition: the key's modRevision is this (0: the key does not exist). */
export interface KeyCompare {
  readonly key: string;
  readonly modRevision: number;
}

/** A transaction's write: a put (under a lease, or none) or a delete. */
export type KeyWrite =
  | {readonly type: 'put'; readonly key: string; readonly value: string; readonly lease?: string}
  | {readonly type: 'delete'; readonly key: string};

export interface CoordinationCallOptions {
  /** The whole call, every member tried included, ends by then: COORDINATION_UNAVAILABLE. Absent: the store's default. */
  readonly timeoutMs?: number;
}

/**
 * What baton needs of etcd to decide who holds a service (DESIGN: "Coordination: `pair` and `etcd`"). Every call has
 * its own deadline and tries the members in turn within it; it throws BatonError COORDINATION_UNAVAILABLE when no
 * member answered in time (naming each member tried and why), COORDINATION_FAILED when one answered with an error.
 * A lease's expiry is never learnt from here: the holder counts its own deadline (coordination/lease-holder.ts).
 */
export interface CoordinationStore {
  /** Grants a new lease of `ttlS`. Not idempotent: each call makes a lease (unused ones expire by themselves). */
  grantLease(ttlS: number, options?: CoordinationCallOptions): Promise<Lease>;
  /** Renews a lease once (one keep-alive). Resolves with the TTL it now has in seconds, 0 when the lease is gone
   *  (expired or revoked): then it cannot come back. Idempotent. */
  renewLease(id: string, options?: CoordinationCallOptions): Promise<number>;
  /** Revokes a lease, deleting every key under it. Idempotent: a lease already gone is fine. */
  revokeLease(id: string, options?: CoordinationCallOptions): Promise<void>;
  /** Writes `value` at `key` under `lease` only if the key does not exist (one transaction: create revision 0).
   *  Resolves with the key written (its modRevision the new epoch), or with the key as it is when another holds it.
   *  Throws COORDINATION_FAILED when the lease is gone. Not idempotent: a second call finds the key its own. */
  acquire(key: string, value: string, lease: string, options?: CoordinationCallOptions):
    Promise<{readonly acquired: boolean; readonly key: StoredKey}>;
  /** The key as etcd has it now (a linearizable read), undefined when absent. */
  read(key: string, options?: CoordinationCallOptions): Promise<StoredKey | undefined>;
  /** Every key under `prefix` as etcd has it now (a linearizable read), in key order, and the revision read at. */
  list(prefix: string, options?: CoordinationCallOptions): Promise<{readonly keys: readonly StoredKey[]; readonly revision: number}>;
  /** Writes `value` at `key` under `lease`, whatever is there: for keys that inform (a host's presence), never for a
   *  key that decides who holds a service (acquire, handOver). Throws COORDINATION_FAILED when the lease is gone. */
  put(key: string, value: string, lease: string, options?: CoordinationCallOptions): Promise<StoredKey>;
  /**
   * Hands a key over in one transaction: only if its modRevision is still `giverRevision` (nobody wrote it since the
   * giver did), writes the taker's `value` under the taker's `lease`. Resolves with the key written (the taker's new
   * epoch) when it was handed over, or with the key as it is (undefined: gone) when it was not.
   */
  handOver(key: string, giverRevision: number, value: string, lease: string, options?: CoordinationCallOptions):
    Promise<{readonly handedOver: boolean; readonly key: StoredKey | undefined}>;
  /**
   * One transaction: when every comparison holds, every write is made, all at once; else none. Resolves whether it
   * succeeded and the store's revision after it (the modRevision of each key written). A comparison of modRevision 0
   * holds for a key that does not exist. Not idempotent: a retried success finds its own writes.
   */
  transact(compares: readonly KeyCompare[], writes: readonly KeyWrite[], options?: CoordinationCallOptions):
    Promise<{readonly succeeded: boolean; readonly revision: number}>;
  /**
   * Every change under `prefix` after `afterRevision` (default: from now on), in order, until `signal` aborts (then
   * it ends). Throws COORDINATION_UNAVAILABLE when the stream cannot be opened or breaks: the caller reads the keys
   * again and watches from where it was. A watch through a member that is cut off from this host goes silent rather
   * than break (nothing reaches us to say so): a watch is for learning changes early, never for safety, and its
   * user reads the keys again now and then.
   */
  watch(prefix: string, signal: AbortSignal, afterRevision?: number): AsyncIterable<CoordinationEvent>;
}
