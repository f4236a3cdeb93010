// CoordinationStore over etcd's own JSON gateway (/v3/kv/range, /v3/kv/put, /v3/kv/txn, /v3/lease/*, /v3/watch; keys and
// values in base64, int64s as decimal text), with node:http/https: every call has its own deadline, and no client
// library decides when a lease is lost.

import {readFile} from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type {EtcdTls} from '../config/coordination.js';
import {BatonError, describeError} from '../errors.js';
import {MAX_ETCD_EPOCH} from '../epoch.js';
import type {CoordinationCallOptions, CoordinationEvent, CoordinationStore, Lease, StoredKey} from '../ports.js';

export interface EtcdClientTls {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

export interface EtcdGatewayOptions {
  /** Client URLs (origins) of the members, tried in turn; the one that last answered is tried first. */
  readonly endpoints: readonly string[];
  readonly tls?: EtcdClientTls;
  /** The deadline of a call that names none. */
  readonly timeoutMs: number;
}

// etcd's "require leader" metadata (clientv3.WithRequireLeader), which the gateway passes on from this header: a member
// cut off from its leader then refuses a call at once (UNAVAILABLE, "no leader") instead of letting it wait for its
// deadline, and cancels a watch instead of leaving it silent, so the call goes to a member that has one.
const REQUIRE_LEADER = {'grpc-metadata-hasleader': 'true'};

// gRPC status codes etcd answers with when another member may do better: the one asked has no leader or lost it
// (UNAVAILABLE 14), or ran out of time waiting for the cluster (DEADLINE_EXCEEDED 4).
const TRY_ANOTHER_MEMBER = new Set([4, 14]);

/** Reads the CA, certificate and key files coordination.tls names. Throws COORDINATION_FAILED naming the file. */
export async function readEtcdTls(tls: EtcdTls | undefined): Promise<EtcdClientTls | undefined> {
  if (tls === undefined) return undefined;
  const read = async (file: string | undefined): Promise<Buffer | undefined> => {
    if (file === undefined) return undefined;
    try {
      return await readFile(file);
    } catch (error) {
      throw new BatonError('COORDINATION_FAILED', `cannot read ${file} (coordination.tls): ${describeError(error)}`, {cause: error});
    }
  };
  return {ca: await read(tls.caFile), cert: await read(tls.client?.certFile), key: await read(tls.client?.keyFile)};
}

export function createEtcdGatewayStore(options: EtcdGatewayOptions): CoordinationStore & {close(): void} {
  if (options.endpoints.length === 0) throw new BatonError('COORDINATION_FAILED', 'no etcd endpoint given');
  const agents = {
    http: new http.Agent({keepAlive: true}),
    https: new https.Agent({keepAlive: true, ca: options.tls?.ca, cert: options.tls?.cert, key: options.tls?.key}),
  };
  let preferred = 0;

  /** One unary call: each member in turn, from the preferred one, each with its share of what is left of the deadline. */
  async function call(path: string, body: unknown, callOptions: CoordinationCallOptions | undefined): Promise<Record<string, unknown>> {
    const timeoutMs = callOptions?.timeoutMs ?? options.timeoutMs;
    const deadline = performance.now() + timeoutMs;
    const tried: string[] = [];
    const count = options.endpoints.length;
    for (let attempt = 0; attempt < count; attempt++) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      const index = (preferred + attempt) % count;
      const endpoint = options.endpoints[index] as string;
      try {
        // The member tried first (the one that answered last) gets half of what is left, the others share the rest:
        // a member that is down fails at once (refused, unreachable), only a silent one uses up its share.
        const share = attempt === count - 1 ? left : attempt === 0 ? left / 2 : left / (count - attempt);
        const reply = await post(endpoint, path, body, Math.max(1, Math.ceil(share)));
        preferred = index;
        return reply;
      } catch (error) {
        if (error instanceof BatonError && error.code === 'COORDINATION_FAILED') throw error;
        tried.push(`${endpoint}: ${describeError(error)}`);
      }
    }
    preferred = (preferred + 1) % count;
    throw new BatonError('COORDINATION_UNAVAILABLE',
      `etcd ${path} got no answer within ${timeoutMs} ms (${tried.length === 0 ? 'no time left' : tried.join('; ')}); ` +
      'check that the members run and that this host reaches them (coordination.endpoints)');
  }

  async function post(endpoint: string, path: string, body: unknown, timeoutMs: number): Promise<Record<string, unknown>> {
    const text = await request(endpoint, path, body, AbortSignal.timeout(timeoutMs), timeoutMs);
    // Streaming calls (lease keep-alive) answer {"result": …} or {"error": …}, one per line; unary ones the message.
    const first = text.split('\n').find((line) => line.trim() !== '') ?? '{}';
    let parsed: unknown;
    try {
      parsed = JSON.parse(first);
    } catch (error) {
      throw new BatonError('COORDINATION_FAILED', `etcd ${endpoint}${path} answered what is not JSON: ${first.slice(0, 200)}`, {cause: error});
    }
    const record = asRecord(parsed);
    // Unary calls fail as {"error": "…", "code": 5, "message": "…"}, streaming ones as {"error": {"grpc_code": 5, …}}.
    const failure = typeof record['error'] === 'object' ? asRecord(record['error']) : record['error'] !== undefined ? record : {};
    if (Object.keys(failure).length > 0) {
      const code = Number(failure['grpc_code'] ?? failure['code']);
      const message = String(failure['message'] ?? failure['error'] ?? JSON.stringify(failure));
      if (TRY_ANOTHER_MEMBER.has(code)) throw new Error(`etcd answered ${message}`);
      throw new BatonError('COORDINATION_FAILED', `etcd ${endpoint}${path} answered an error: ${message} (gRPC code ${code})`);
    }
    return asRecord(record['result'] ?? record);
  }

  function request(endpoint: string, path: string, body: unknown, signal: AbortSignal, timeoutMs: number): Promise<string> {
    const url = new URL(path, endpoint);
    const secure = url.protocol === 'https:';
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(url, {
        method: 'POST', agent: secure ? agents.https : agents.http, signal,
        headers: {'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...REQUIRE_LEADER},
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        res.on('error', reject);
      });
      req.on('error', (error) => reject(signal.aborted ? new Error(`no answer within ${Math.round(timeoutMs)} ms`) : error));
      req.end(payload);
    });
  }

  return {
    async grantLease(ttlS, callOptions): Promise<Lease> {
      const reply = await call('/v3/lease/grant', {TTL: String(ttlS), ID: '0'}, callOptions);
      const id = String(reply['ID'] ?? '0');
      if (id === '0') throw new BatonError('COORDINATION_FAILED', `etcd granted no lease: ${String(reply['error'] ?? JSON.stringify(reply))}`);
      return {id, ttlS: Number(reply['TTL'] ?? 0)};
    },

    async renewLease(id, callOptions): Promise<number> {
      const reply = await call('/v3/lease/keepalive', {ID: id}, callOptions);
      // A lease etcd no longer has is answered with TTL 0 (or left out, the JSON default).
      return Number(reply['TTL'] ?? 0);
    },

    async revokeLease(id, callOptions): Promise<void> {
      try {
        await call('/v3/lease/revoke', {ID: id}, callOptions);
      } catch (error) {
        if (error instanceof BatonError && error.code === 'COORDINATION_FAILED' && /lease not found/.test(error.message)) return;
        throw error;
      }
    },

    async acquire(key, value, lease, callOptions) {
      const reply = await call('/v3/kv/txn', {
        compare: [{key: b64(key), target: 'CREATE', result: 'EQUAL', create_revision: '0'}],
        success: [{request_put: {key: b64(key), value: b64(value), lease}}],
        failure: [{request_range: {key: b64(key)}}],
      }, callOptions);
      return settle<{acquired: boolean; key: StoredKey}>(reply, key, value, lease, (stored) => ({acquired: true, key: stored}),
        (current) => ({acquired: false, key: current ?? missing(key)}));
    },

    async read(key, callOptions) {
      const reply = await call('/v3/kv/range', {key: b64(key)}, callOptions);
      const kvs = reply['kvs'];
      return Array.isArray(kvs) && kvs.length > 0 ? decodeKv(kvs[0]) : undefined;
    },

    async list(prefix, callOptions) {
      const reply = await call('/v3/kv/range', {key: b64(prefix), range_end: b64(prefixEnd(prefix))}, callOptions);
      const kvs = Array.isArray(reply['kvs']) ? reply['kvs'] : [];
      return {keys: kvs.map(decodeKv), revision: revisionOf(asRecord(reply['header'])['revision'], `the read of ${prefix}*`)};
    },

    async put(key, value, lease, callOptions) {
      const reply = await call('/v3/kv/put', {key: b64(key), value: b64(value), lease}, callOptions);
      return {key, value, lease, modRevision: revisionOf(asRecord(reply['header'])['revision'], `the write of ${key}`)};
    },

    async handOver(key, giverRevision, value, lease, callOptions) {
      const reply = await call('/v3/kv/txn', {
        compare: [{key: b64(key), target: 'MOD', result: 'EQUAL', mod_revision: String(giverRevision)}],
        success: [{request_put: {key: b64(key), value: b64(value), lease}}],
        failure: [{request_range: {key: b64(key)}}],
      }, callOptions);
      return settle<{handedOver: boolean; key: StoredKey | undefined}>(reply, key, value, lease, (stored) => ({handedOver: true, key: stored}),
        (current) => ({handedOver: false, key: current}));
    },

    async transact(compares, writes, callOptions) {
      const reply = await call('/v3/kv/txn', {
        compare: compares.map(({key, modRevision}) => ({key: b64(key), target: 'MOD', result: 'EQUAL', mod_revision: String(modRevision)})),
        success: writes.map((write) => write.type === 'put'
          ? {request_put: {key: b64(write.key), value: b64(write.value), ...write.lease === undefined ? {} : {lease: write.lease}}}
          : {request_delete_range: {key: b64(write.key)}}),
        failure: [],
      }, callOptions);
      return {succeeded: reply['succeeded'] === true, revision: revisionOf(asRecord(reply['header'])['revision'], `a transaction on ${compares.map((c) => c.key).join(', ')}`)};
    },

    watch(prefix, signal, afterRevision) {
      return watchPrefix(prefix, signal, afterRevision);
    },

    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };

  async function* watchPrefix(prefix: string, signal: AbortSignal, afterRevision?: number): AsyncGenerator<CoordinationEvent> {
    const index = preferred;
    const endpoint = options.endpoints[index] as string;
    // Whatever breaks this watch, the next call (or watch) starts at the next member.
    const passOver = (): void => {
      if (preferred === index) preferred = (index + 1) % options.endpoints.length;
    };
    const url = new URL('/v3/watch', endpoint);
    const secure = url.protocol === 'https:';
    const payload = JSON.stringify({create_request: {key: b64(prefix), range_end: b64(prefixEnd(prefix)),
      ...afterRevision === undefined ? {} : {start_revision: String(afterRevision + 1)}}});
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = (secure ? https : http).request(url, {method: 'POST', agent: false, signal,
        headers: {'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...REQUIRE_LEADER}}, resolve);
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
      req.on('response', () => clearTimeout(timer));
      req.on('error', (error) => {
        clearTimeout(timer);
        passOver();
        reject(new BatonError('COORDINATION_UNAVAILABLE', `etcd ${endpoint}/v3/watch: ${describeError(error)}`, {cause: error}));
      });
      req.end(payload);
    });
    let buffered = '';
    try {
      for await (const chunk of res) {
        buffered += (chunk as Buffer).toString('utf8');
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line === '') continue;
          const message = asRecord(JSON.parse(line) as unknown);
          if (message['error'] !== undefined) {
            // Most often "no leader" (the member lost its leader): watching again through another member is the cure.
            throw new BatonError('COORDINATION_UNAVAILABLE', `etcd ${endpoint}/v3/watch: ${String(asRecord(message['error'])['message'] ?? JSON.stringify(message['error']))}`);
          }
          const result = asRecord(message['result']);
          if (result['canceled'] === true) {
            throw new BatonError('COORDINATION_UNAVAILABLE', `etcd ${endpoint}/v3/watch was cancelled: ${String(result['cancel_reason'] ?? 'no reason given')}`);
          }
          const events = Array.isArray(result['events']) ? result['events'] : [];
          for (const raw of events) {
            const event = asRecord(raw);
            const kv = decodeKv(event['kv']);
            yield event['type'] === 'DELETE' ? {type: 'delete', key: kv.key, modRevision: kv.modRevision} : {type: 'put', key: kv};
          }
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      passOver();
      if (error instanceof BatonError) throw error;
      throw new BatonError('COORDINATION_UNAVAILABLE', `etcd ${endpoint}/v3/watch broke: ${describeError(error)}`, {cause: error});
    }
    if (!signal.aborted) {
      passOver();
      throw new BatonError('COORDINATION_UNAVAILABLE', `etcd ${endpoint}/v3/watch ended`);
    }
  }
}

/** The key a txn wrote (its revision is the header's), or the key as the failure branch read it. */
function settle<T>(reply: Record<string, unknown>, key: string, value: string, lease: string,
  written: (stored: StoredKey) => T, refused: (current: StoredKey | undefined) => T): T {
  if (reply['succeeded'] === true) {
    return written({key, value, lease, modRevision: revisionOf(asRecord(reply['header'])['revision'], `the write of ${key}`)});
  }
  const responses = Array.isArray(reply['responses']) ? reply['responses'] : [];
  const range = asRecord(asRecord(responses[0])['response_range']);
  const kvs = Array.isArray(range['kvs']) ? range['kvs'] : [];
  return refused(kvs.length > 0 ? decodeKv(kvs[0]) : undefined);
}

function missing(key: string): never {
  throw new BatonError('COORDINATION_FAILED', `etcd refused to create ${key} but has no such key: a concurrent delete; try again`);
}

function decodeKv(raw: unknown): StoredKey {
  const kv = asRecord(raw);
  return {
    key: unb64(kv['key']),
    value: unb64(kv['value']),
    // The gateway leaves out fields at their default (0).
    modRevision: revisionOf(kv['mod_revision'], unb64(kv['key'])),
    lease: String(kv['lease'] ?? '0'),
  };
}

/**
 * A revision from etcd (an int64, which the gateway writes as a decimal string and leaves out at 0) as baton's etcd
 * epoch: exact up to MAX_ETCD_EPOCH (2^53 − 1, epoch.ts). Past it, or not a revision at all, it is refused rather than
 * rounded: a rounded revision would make each compare-and-swap on it fail, or match the wrong write.
 */
export function revisionOf(raw: unknown, what: string): number {
  if (raw === undefined) return 0;
  const text = typeof raw === 'number' || typeof raw === 'string' ? String(raw) : undefined;
  if (text === undefined || !/^\d{1,20}$/.test(text)) {
    throw new BatonError('COORDINATION_FAILED', `etcd answered ${JSON.stringify(raw)} as the revision of ${what}: expected a decimal integer`);
  }
  if (BigInt(text) > BigInt(MAX_ETCD_EPOCH)) {
    throw new BatonError('COORDINATION_FAILED', `etcd's revision ${text} (of ${what}) is past ${MAX_ETCD_EPOCH} (2^53 − 1), the largest epoch ` +
      'baton carries exactly; baton cannot coordinate through this cluster: give it an etcd cluster of its own');
  }
  return Number(text);
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? value as Record<string, unknown> : {};
}

function b64(text: string | Buffer): string {
  return (typeof text === 'string' ? Buffer.from(text, 'utf8') : text).toString('base64');
}

function unb64(value: unknown): string {
  return typeof value === 'string' ? Buffer.from(value, 'base64').toString('utf8') : '';
}

/** The range end that covers every key beginning with `prefix`: its last byte plus one (etcd's clientv3.GetPrefixRangeEnd). */
export function prefixEnd(prefix: string): Buffer {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if ((bytes[i] as number) < 0xff) {
      bytes[i] = (bytes[i] as number) + 1;
      return bytes.subarray(0, i + 1);
    }
  }
  // All 0xff: every key from the prefix on (etcd's "\0" range end).
  return Buffer.from([0]);
}
