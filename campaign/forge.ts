// The attacker's tools, used by the flood and forged-control parts: a pool file of datagrams, the sender process
// in the client's namespace, nftables rewriting a sender's source address to a lab host's, the agent's rejection
// counters, and reading datagrams out of a tcpdump capture to replay them.

import {readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {fileURLToPath} from 'node:url';
import type {StatusReport} from '../agent/control-protocol.js';
import {callAgent} from '../cli/control-client.js';
import type {Lab, LabHost} from '../cli/lab/lab.js';
import {runInNamespace, spawnInNamespace} from '../cli/lab/namespaces.js';
import {isProcessAlive} from '../cli/lab/web.js';
import type {CampaignContext} from './case.js';

const SENDER = fileURLToPath(new URL('./flood-sender.js', import.meta.url));
export const BEACON_PORT = 7411;

/** Writes datagrams length-prefixed (2 bytes, big-endian), the sender's pool format. */
export async function writePool(file: string, datagrams: readonly Uint8Array[]): Promise<void> {
  const parts: Buffer[] = [];
  for (const datagram of datagrams) {
    const bytes = Buffer.from(datagram.subarray(0, 0xffff));
    const length = Buffer.alloc(2);
    length.writeUInt16BE(bytes.length);
    parts.push(length, bytes);
  }
  await writeFile(file, Buffer.concat(parts));
}

/**
 * Makes datagrams that the client's namespace sends to `target` from UDP port `port` leave with `as`'s address as
 * their source (nftables SNAT), as an attacker on the LAN forges it: the kernel will not send from an address
 * the host does not have. Each call adds one rule; the table goes with the namespace.
 */
export async function forgeSource(context: CampaignContext, lab: Lab, target: LabHost, as: LabHost, port: number): Promise<void> {
  const file = join(context.dir, `forge-${port}.nft`);
  await writeFile(file, [
    'table ip baton_forge {',
    '  chain post {',
    '    type nat hook postrouting priority srcnat;',
    `    ip daddr ${target.address} udp sport ${port} snat to ${as.address}`,
    '  }',
    '}',
    '',
  ].join('\n'));
  await runInNamespace(context.runner, lab.client.namespace, '/usr/sbin/nft', ['-f', file]);
}

export interface SenderResult {
  readonly sent: number;
  readonly errors: number;
  readonly lastError: string;
  readonly elapsedS: number;
}

export interface Sender {
  readonly pid: number;
  /** Waits for the sender to finish by itself (killed past `timeoutMs`), with what it sent. */
  wait(timeoutMs: number): Promise<SenderResult>;
}

/** Starts the sender in the client's namespace: the pool at `rate` a second for `seconds`, from UDP port `port`. */
export async function startSender(lab: Lab, dir: string, options: {
  name: string; target: LabHost; pool: string; rate: number; seconds: number; port?: number;
}): Promise<Sender> {
  const out = join(dir, `${options.name}.json`);
  const args = [SENDER, '--target', `${options.target.address}:${BEACON_PORT}`, '--pool', options.pool, '--rate', String(options.rate),
    '--seconds', String(options.seconds), '--out', out, '--port', String(options.port ?? 0)];
  const pid = await spawnInNamespace(lab.client.namespace, process.execPath, args, `${out}.log`);
  return {
    pid,
    async wait(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (isProcessAlive(pid) && Date.now() < deadline) await sleep(100);
      if (isProcessAlive(pid)) {
        process.kill(pid, 'SIGKILL');
        throw new Error(`the sender ${options.name} (pid ${pid}) did not finish in ${timeoutMs} ms`);
      }
      const text = await readFile(out, 'utf8').catch(async () => {
        throw new Error(`the sender ${options.name} wrote no result: ${await readFile(`${out}.log`, 'utf8').catch(() => '(no log)')}`);
      });
      return JSON.parse(text) as SenderResult;
    },
  };
}

export async function statusOf(host: LabHost): Promise<StatusReport> {
  return await callAgent(host.socket, {id: 'campaign', type: 'status'}) as StatusReport;
}

export function rejectedTotal(status: StatusReport): number {
  return Object.values(status.beacons.rejected).reduce((a, b) => a + b, 0);
}

/** The rejections between two status reports, by reason: "bad-mac 12, replay 3". */
export function rejectedSince(before: StatusReport, after: StatusReport): {total: number; byReason: string} {
  const entries = Object.entries(after.beacons.rejected)
    .map(([reason, n]) => [reason, n - (before.beacons.rejected[reason as keyof StatusReport['beacons']['rejected']] ?? 0)] as const)
    .filter(([, n]) => n > 0);
  return {total: rejectedTotal(after) - rejectedTotal(before), byReason: entries.map(([reason, n]) => `${reason} ${n}`).join(', ') || 'none'};
}

/** UDP datagrams the namespace's kernel dropped before any program read them (socket buffer full, bad checksum). */
export async function kernelUdpDrops(context: CampaignContext, namespace: string): Promise<number> {
  const snmp = await runInNamespace(context.runner, namespace, 'cat', ['/proc/net/snmp']);
  const lines = snmp.split('\n').filter((l) => l.startsWith('Udp:'));
  const names = (lines[0] ?? '').split(/\s+/);
  const counts = (lines[1] ?? '').split(/\s+/);
  // InErrors counts RcvbufErrors too.
  return Number(counts[names.indexOf('InErrors')] ?? 0);
}

/** The UDP payloads in a classic pcap file of Ethernet frames carrying IPv4 (tcpdump -w). */
export function udpPayloadsOfPcap(file: Buffer): Uint8Array[] {
  if (file.length < 24) return [];
  const magic = file.readUInt32LE(0);
  const little = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!little && file.readUInt32BE(0) !== 0xa1b2c3d4 && file.readUInt32BE(0) !== 0xa1b23c4d) throw new Error('not a pcap file');
  const u32 = (at: number): number => (little ? file.readUInt32LE(at) : file.readUInt32BE(at));
  if (u32(20) !== 1) throw new Error(`pcap link type ${u32(20)}, expected Ethernet (1)`);
  const payloads: Uint8Array[] = [];
  for (let at = 24; at + 16 <= file.length;) {
    const captured = u32(at + 8);
    const frame = file.subarray(at + 16, at + 16 + captured);
    at += 16 + captured;
    if (frame.length < 14 + 20 + 8 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    const headerBytes = ((ip[0] ?? 0) & 0x0f) * 4;
    if (ip[9] !== 17) continue;
    const udp = ip.subarray(headerBytes);
    const length = udp.readUInt16BE(4);
    payloads.push(new Uint8Array(udp.subarray(8, length)));
  }
  return payloads;
}
