// Boundary interfaces between baton's pure core and the outside world, and the value types they speak.
// No execa, dgram or systeminformation type crosses these; fakes in test/fakes implement them.

export type Role = 'primary' | 'backup';

/** The service address with its prefix, e.g. 192.0.2.100/24. */
export interface ServiceIp {
  readonly address: string;
  readonly prefixLength: number;
  readonly family: 4 | 6;
  /** address/prefixLength, as `ip` takes it. */
  readonly cidr: string;
}

/** Monotonic milliseconds, never Date.now(): a wall-clock step must not fake a dead peer. */
export interface Clock {
  /** Monotonic ms since an arbitrary origin. */
  now(): number;
  /** Wall-clock ms since the epoch; only for the sent-at field of datagrams and for humans. */
  wallNow(): number;
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
}

export interface CommandRunner {
  /** Runs a program with an argument array (never a shell); resolves with stdout.
   *  Throws BatonError COMMAND_FAILED (non-zero exit, with stderr and exitCode in cause) or COMMAND_TIMEOUT. */
  run(file: string, args: readonly string[], options?: {timeoutMs?: number}): Promise<string>;
}

/** What survives a restart: the epoch of the last IP acquisition (and, with switchover, the switch journal). */
export interface PersistentState {
  readonly epoch: number;
}

export interface StateStore {
  /** undefined when nothing was saved yet. Throws when the file exists but is unreadable or corrupt. */
  load(): Promise<PersistentState | undefined>;
  /** Atomic: write a temp file, fsync, rename. */
  save(state: PersistentState): Promise<void>;
}
