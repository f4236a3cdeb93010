// The client's probers of a service, one per address (probe-control.ts startStreams), and what `baton rehearse`
// probes (agent-target.ts probedService): a dual-stack service is probed at both addresses, each its own stream.

import test from 'ava';
import {probedService} from '../../../cli/drill/agent-target.js';
import {startStreams, type ServiceProbers} from '../../../cli/lab/probe-control.js';
import type {ProbeRecord} from '../../../cli/lab/probe-report.js';

function record(url: string): ProbeRecord {
  return {seq: 0, sentAt: 1000, ok: true, rttMs: 2, host: url.includes('[') ? 'v6-host' : 'v4-host', error: null};
}

/** A prober that answers with one record of its URL, and says when it was stopped. */
function fakeProber(url: string, stopped: string[]): ServiceProbers {
  return {read: async () => [record(url)], stop: async () => {
    stopped.push(url);
    return [record(url)];
  }};
}

test('rehearse probes every address the agent reports, or the one --url gives', (t) => {
  t.deepEqual(probedService({address: '192.0.2.100/24', addresses: ['192.0.2.100/24', '2001:db8::100/64']}, undefined),
    {urls: ['http://192.0.2.100/', 'http://[2001:db8::100]/'], families: [4, 6]});
  t.deepEqual(probedService({address: '2001:db8::100/64', addresses: ['2001:db8::100/64']}, undefined), {urls: ['http://[2001:db8::100]/'], families: [6]});
  t.deepEqual(probedService({address: '192.0.2.100/24', addresses: ['192.0.2.100/24', '2001:db8::100/64']}, 'http://www.example.org/health'),
    {urls: ['http://www.example.org/health'], families: [4]});
});

test('a prober per address, each record labelled with its family\'s stream; one address is one unlabelled stream', async (t) => {
  const stopped: string[] = [];
  const started: [string, string | undefined][] = [];
  const dual = await startStreams({urls: ['http://192.0.2.100/', 'http://[2001:db8::100]/'], families: [4, 6]}, async (url, stream) => {
    started.push([url, stream]);
    return fakeProber(url, stopped);
  });
  t.deepEqual(started, [['http://192.0.2.100/', 'IPv4'], ['http://[2001:db8::100]/', 'IPv6']]);
  t.deepEqual((await dual.read()).map((r) => [r.host, r.stream]), [['v4-host', 'IPv4'], ['v6-host', 'IPv6']]);
  t.deepEqual((await dual.stop()).map((r) => r.stream), ['IPv4', 'IPv6']);
  t.deepEqual(stopped.sort(), ['http://192.0.2.100/', 'http://[2001:db8::100]/']);
  const single = await startStreams({urls: ['http://192.0.2.100/'], families: [4]}, async (url, stream) => {
    t.is(stream, undefined);
    return fakeProber(url, []);
  });
  t.deepEqual((await single.read()).map((r) => r.stream), [undefined]);
});

test('when one address\'s prober cannot start, the other is stopped and the failure thrown', async (t) => {
  const stopped: string[] = [];
  const error = await t.throwsAsync(startStreams({urls: ['http://192.0.2.100/', 'http://[2001:db8::100]/'], families: [4, 6]}, async (url) => {
    if (url.includes('[')) throw new Error('the prober exited without a record (injected)');
    return fakeProber(url, stopped);
  }));
  t.is(error?.message, 'the prober exited without a record (injected)');
  t.deepEqual(stopped, ['http://192.0.2.100/'], 'the IPv4 prober is not left probing for its whole duration');
});
