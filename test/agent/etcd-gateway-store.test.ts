// The etcd gateway adapter against stand-in members on loopback that answer as etcd's JSON gateway does: the
// requests it sends, the answers it reads, and how it fails (an error from etcd, a member with no leader, a silent one).

import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http';
import type {AddressInfo} from 'node:net';
import test, {type ExecutionContext} from 'ava';
import {createEtcdGatewayStore, prefixEnd} from '../../agent/adapters/etcd-gateway-store.js';
import {BatonError} from '../../agent/errors.js';

type Handler = (path: string, body: Record<string, unknown>, res: ServerResponse) => void;

const b64 = (text: string): string => Buffer.from(text).toString('base64');

/** A stand-in member; every request it gets is recorded. Closed in teardown. */
async function member(t: ExecutionContext, handler: Handler): Promise<{url: string; requests: {path: string; body: Record<string, unknown>}[]; leaderRequired: boolean[]}> {
  const requests: {path: string; body: Record<string, unknown>}[] = [];
  const leaderRequired: boolean[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    req.on('end', () => {
      const body = JSON.parse(text || '{}') as Record<string, unknown>;
      requests.push({path: req.url ?? '', body});
      leaderRequired.push(req.headers['grpc-metadata-hasleader'] === 'true');
      handler(req.url ?? '', body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return {url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, leaderRequired};
}

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, {'content-type': 'application/json'}).end(JSON.stringify(value));
}

const HEADER = {cluster_id: '1', member_id: '2', revision: '41', raft_term: '3'};

test('acquire is one transaction that writes only when the key was never created, and reads the holder when it was', async (t) => {
  let taken = false;
  const m = await member(t, (_path, _body, res) => {
    if (!taken) {
      taken = true;
      json(res, 200, {header: {...HEADER, revision: '42'}, succeeded: true, responses: [{response_put: {header: HEADER}}]});
    } else {
      json(res, 200, {header: HEADER, responses: [{response_range: {header: HEADER, count: '1',
        kvs: [{key: b64('/baton/web'), create_revision: '42', mod_revision: '42', version: '1', value: b64('host-a'), lease: '7587'}]}}]});
    }
  });
  const store = createEtcdGatewayStore({endpoints: [m.url], timeoutMs: 2000});
  t.teardown(() => store.close());
  t.deepEqual(await store.acquire('/baton/web', 'host-a', '7587'), {acquired: true, key: {key: '/baton/web', value: 'host-a', lease: '7587', modRevision: 42}});
  t.deepEqual(await store.acquire('/baton/web', 'host-b', '9000'), {acquired: false, key: {key: '/baton/web', value: 'host-a', lease: '7587', modRevision: 42}});
  t.is(m.requests[0]?.path, '/v3/kv/txn');
  t.deepEqual(m.requests[0]?.body, {
    compare: [{key: b64('/baton/web'), target: 'CREATE', result: 'EQUAL', create_revision: '0'}],
    success: [{request_put: {key: b64('/baton/web'), value: b64('host-a'), lease: '7587'}}],
    failure: [{request_range: {key: b64('/baton/web')}}],
  });
});

test('a hand-over compares the giver\'s mod revision and puts the taker\'s value under the taker\'s lease', async (t) => {
  const m = await member(t, (_path, _body, res) => json(res, 200, {header: HEADER}));
  const store = createEtcdGatewayStore({endpoints: [m.url], timeoutMs: 2000});
  t.teardown(() => store.close());
  t.deepEqual(await store.handOver('/baton/web', 42, 'host-b', '9000'), {handedOver: false, key: undefined});
  t.deepEqual(m.requests[0]?.body, {
    compare: [{key: b64('/baton/web'), target: 'MOD', result: 'EQUAL', mod_revision: '42'}],
    success: [{request_put: {key: b64('/baton/web'), value: b64('host-b'), lease: '9000'}}],
    failure: [{request_range: {key: b64('/baton/web')}}],
  });
});

test('list reads every key under a prefix with its range end, and the revision read at; put writes under a lease', async (t) => {
  const m = await member(t, (path, _body, res) => {
    if (path === '/v3/kv/put') return json(res, 200, {header: {...HEADER, revision: '43'}});
    json(res, 200, {header: HEADER, count: '2', kvs: [
      {key: b64('/baton/hosts/a'), create_revision: '40', mod_revision: '40', version: '1', value: b64('{"health":"ok"}'), lease: '11'},
      {key: b64('/baton/hosts/b'), create_revision: '41', mod_revision: '41', version: '1', value: b64('{"health":"failing"}'), lease: '12'},
    ]});
  });
  const store = createEtcdGatewayStore({endpoints: [m.url], timeoutMs: 2000});
  t.teardown(() => store.close());
  t.deepEqual(await store.list('/baton/hosts/'), {revision: 41, keys: [
    {key: '/baton/hosts/a', value: '{"health":"ok"}', lease: '11', modRevision: 40},
    {key: '/baton/hosts/b', value: '{"health":"failing"}', lease: '12', modRevision: 41},
  ]});
  t.deepEqual(m.requests[0], {path: '/v3/kv/range', body: {key: b64('/baton/hosts/'), range_end: b64('/baton/hosts0')}});
  t.deepEqual(await store.put('/baton/hosts/a', '{"health":"failing"}', '11'),
    {key: '/baton/hosts/a', value: '{"health":"failing"}', lease: '11', modRevision: 43});
  t.deepEqual(m.requests[1], {path: '/v3/kv/put', body: {key: b64('/baton/hosts/a'), value: b64('{"health":"failing"}'), lease: '11'}});
  // An empty prefix: the gateway leaves out kvs.
  const empty = await member(t, (_path, _body, res) => json(res, 200, {header: HEADER}));
  const none = createEtcdGatewayStore({endpoints: [empty.url], timeoutMs: 2000});
  t.teardown(() => none.close());
  t.deepEqual(await none.list('/baton/hosts/'), {keys: [], revision: 41});
});

test('revisions up to 2^53 − 1 are read and compared exactly, past 2^31 − 1 (a pair\'s largest epoch) as well', async (t) => {
  const revisions = ['2147483647', '2147483648', '9007199254740991'];
  const m = await member(t, (path, body, res) => {
    const revision = revisions[Number(body['key'] === b64('/baton/web') ? 0 : 1)];
    if (path === '/v3/kv/txn') return json(res, 200, {header: {...HEADER, revision: '9007199254740991'}, succeeded: true});
    json(res, 200, {header: {...HEADER, revision: '9007199254740991'}, count: '1',
      kvs: [{key: body['key'], create_revision: '1', mod_revision: revision, version: '1', value: b64('host-a'), lease: '7'}]});
  });
  const store = createEtcdGatewayStore({endpoints: [m.url], timeoutMs: 2000});
  t.teardown(() => store.close());
  t.is((await store.read('/baton/web'))?.modRevision, 2_147_483_647);
  t.is((await store.read('/baton/other'))?.modRevision, 2_147_483_648);
  const handed = await store.handOver('/baton/web', 9_007_199_254_740_991, 'host-b', '9');
  t.is(handed.key?.modRevision, 9_007_199_254_740_991);
  t.deepEqual((m.requests.at(-1)?.body['compare'] as unknown[])[0], {key: b64('/baton/web'), target: 'MOD', result: 'EQUAL', mod_revision: '9007199254740991'});
  t.like(await store.transact([{key: '/baton/web', modRevision: 9_007_199_254_740_990}], []), {succeeded: true, revision: 9_007_199_254_740_991});
});

test('a revision past 2^53 − 1, or not a number, is refused with what and why, never rounded', async (t) => {
  let revision: unknown = '9007199254740993';
  const m = await member(t, (_path, body, res) => json(res, 200, {header: HEADER, count: '1',
    kvs: [{key: body['key'], create_revision: '1', mod_revision: revision, version: '1', value: b64('host-a'), lease: '7'}]}));
  const store = createEtcdGatewayStore({endpoints: [m.url], timeoutMs: 2000});
  t.teardown(() => store.close());
  const past = await t.throwsAsync(store.read('/baton/web'), {instanceOf: BatonError});
  t.is(past?.code, 'COORDINATION_FAILED');
  t.is(past?.message, 'etcd\'s revision 9007199254740993 (of /baton/web) is past 9007199254740991 (2^53 − 1), the largest epoch baton ' +
    'carries exactly; baton cannot coordinate through this cluster: give it an etcd cluster of its own');
  revision = '1e3';
  const odd = await t.throwsAsync(store.read('/baton/web'), {instanceOf: BatonError});
  t.is(odd?.message, 'etcd answered "1e3" as the revision of /baton/web: expected a decimal integer');
});

test('a renewal of a lease etcd no longer has answers 0, which the gateway leaves out', async (t) => {
  const m = await member(t, (_path, body, res) => {
    res.writeHead(200, {'content-type': 'application/json'});
    res.end(`${JSON.stringify({result: body['ID'] === '1' ? {header: HEADER, ID: '1', TTL: '10'} : {header: HEADER, ID: body['ID']}})}\n`);
  });
  const store = createEtcdGatewayStore({endpoints: [m.url], timeoutMs: 2000});
  t.teardown(() => store.close());
  t.is(await store.renewLease('1'), 10);
  t.is(await store.renewLease('2'), 0);
  t.is(m.requests[0]?.path, '/v3/lease/keepalive');
});

test('an error etcd answers is COORDINATION_FAILED with the member and etcd\'s words; a revoke of a gone lease is fine', async (t) => {
  const m = await member(t, (_path, _body, res) => json(res, 400, {error: 'etcdserver: requested lease not found', message: 'etcdserver: requested lease not found', code: 5}));
  const store = createEtcdGatewayStore({endpoints: [m.url], timeoutMs: 2000});
  t.teardown(() => store.close());
  const error = await t.throwsAsync(store.acquire('/baton/web', 'host-a', '1'), {instanceOf: BatonError});
  t.is(error?.code, 'COORDINATION_FAILED');
  t.is(error?.message, `etcd ${m.url}/v3/kv/txn answered an error: etcdserver: requested lease not found (gRPC code 5)`);
  await t.notThrowsAsync(store.revokeLease('1'));
});

test('a member without a leader is passed over for the next, which is then asked first', async (t) => {
  const leaderless = await member(t, (_path, _body, res) => json(res, 503, {error: 'etcdserver: no leader', message: 'etcdserver: no leader', code: 14}));
  const healthy = await member(t, (_path, _body, res) => json(res, 200, {header: HEADER}));
  const store = createEtcdGatewayStore({endpoints: [leaderless.url, healthy.url], timeoutMs: 2000});
  t.teardown(() => store.close());
  t.is(await store.read('/baton/web'), undefined);
  t.is(await store.read('/baton/web'), undefined);
  t.is(leaderless.requests.length, 1, 'asked once, then the member that answered is asked first');
  t.deepEqual([...leaderless.leaderRequired, ...healthy.leaderRequired], [true, true, true], 'every call requires a leader');
  t.is(healthy.requests.length, 2);
});

test('members that do not answer make COORDINATION_UNAVAILABLE at the call\'s deadline, naming each member and why', async (t) => {
  const silent = await member(t, () => undefined);
  const store = createEtcdGatewayStore({endpoints: [silent.url, 'http://127.0.0.1:1'], timeoutMs: 5000});
  t.teardown(() => store.close());
  // 2 s: the silent member gets half, and the refusing one is still tried on a machine busy enough to make the
  // first attempt's timer fire late (with 300 ms it was not, once).
  const error = await t.throwsAsync(store.renewLease('1', {timeoutMs: 2000}), {instanceOf: BatonError});
  t.is(error?.code, 'COORDINATION_UNAVAILABLE');
  t.regex(error?.message ?? '', new RegExp(`^etcd /v3/lease/keepalive got no answer within 2000 ms \\(${silent.url}: no answer within \\d+ ms; http://127.0.0.1:1: connect ECONNREFUSED`));
  t.regex(error?.message ?? '', /check that the members run and that this host reaches them \(coordination\.endpoints\)$/);
});

test('watch yields puts and deletes in order from the stream, from the revision after the one given', async (t) => {
  const m = await member(t, (_path, _body, res) => {
    res.writeHead(200, {'content-type': 'application/json'});
    res.write(`${JSON.stringify({result: {header: HEADER, created: true}})}\n`);
    res.write(`${JSON.stringify({result: {header: HEADER, events: [{kv: {key: b64('/baton/web'), mod_revision: '43', value: b64('host-b'), lease: '9'}}]}})}\n`);
    res.end(`${JSON.stringify({result: {header: HEADER, events: [{type: 'DELETE', kv: {key: b64('/baton/web'), mod_revision: '44'}}]}})}\n`);
  });
  const store = createEtcdGatewayStore({endpoints: [m.url], timeoutMs: 2000});
  t.teardown(() => store.close());
  const seen: unknown[] = [];
  const abort = new AbortController();
  const error = await t.throwsAsync(async () => {
    for await (const event of store.watch('/baton/', abort.signal, 42)) seen.push(event);
  }, {instanceOf: BatonError});
  t.deepEqual(seen, [
    {type: 'put', key: {key: '/baton/web', value: 'host-b', modRevision: 43, lease: '9'}},
    {type: 'delete', key: '/baton/web', modRevision: 44},
  ]);
  t.is(error?.code, 'COORDINATION_UNAVAILABLE', 'a stream that ends is a broken watch');
  t.deepEqual(m.requests[0], {path: '/v3/watch', body: {create_request: {key: b64('/baton/'), range_end: b64('/baton0'), start_revision: '43'}}});
  t.deepEqual(m.leaderRequired, [true], 'a member without a leader cancels the watch rather than leave it silent');
});

test('a watch that etcd ends with an error (no leader) is COORDINATION_UNAVAILABLE, to be watched again elsewhere', async (t) => {
  const m = await member(t, (_path, _body, res) => {
    res.writeHead(200, {'content-type': 'application/json'});
    res.end(`${JSON.stringify({error: {grpc_code: 14, http_code: 503, message: 'etcdserver: no leader', http_status: 'Service Unavailable'}})}\n`);
  });
  const store = createEtcdGatewayStore({endpoints: [m.url], timeoutMs: 2000});
  t.teardown(() => store.close());
  const error = await t.throwsAsync(async () => {
    for await (const event of store.watch('/baton/', new AbortController().signal)) t.fail(JSON.stringify(event));
  }, {instanceOf: BatonError});
  t.is(error?.code, 'COORDINATION_UNAVAILABLE');
  t.is(error?.message, `etcd ${m.url}/v3/watch: etcdserver: no leader`);
});

test('the range end of a prefix is its last byte plus one', (t) => {
  t.is(prefixEnd('/baton/').toString(), '/baton0');
  t.deepEqual([...prefixEnd('a\u00ff')], [0x61, 0xc3, 0xc0]);
});
