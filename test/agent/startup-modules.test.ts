// What the agent loads at start: every module it imports statically stays resident for its whole life (the unit
// runs it --jitless, so each one's source and bytecode count against DESIGN's 64 MB at rest).

import {execFile} from 'node:child_process';
import {promisify} from 'node:util';
import test from 'ava';
import {AGENT_NODE_FLAGS} from '../../cli/lab/lab.js';

const AGENT = new URL('../../agent/main.js', import.meta.url).pathname;
// Prints the built-ins loaded once `--version` has been reached, i.e. after every static import was evaluated.
const RECORD = `data:text/javascript,process.on('exit', () => process.stderr.write(JSON.stringify(process.moduleLoadList)))`;

async function builtinsAtStart(): Promise<string[]> {
  const {stderr} = await promisify(execFile)(process.execPath, [...AGENT_NODE_FLAGS, '--import', RECORD, AGENT, '--version']);
  return JSON.parse(stderr) as string[];
}

test('the agent does not load node:http, nor undici with it, until an HTTP check or the metrics server needs it', async (t) => {
  const loaded = await builtinsAtStart();
  t.true(loaded.includes('NativeModule dgram'), 'the recording sees the agent\'s own imports');
  for (const heavy of ['NativeModule http', 'NativeModule https', 'NativeModule internal/deps/undici/undici', 'NativeModule http2', 'NativeModule zlib']) {
    t.false(loaded.includes(heavy), `${heavy} is loaded at start`);
  }
});

test('the metrics server, once loaded, does not bring undici with node:http', async (t) => {
  const server = new URL('../../agent/metrics-server.js', import.meta.url).href;
  const {stdout} = await promisify(execFile)(process.execPath, [...AGENT_NODE_FLAGS, '--input-type=module', '-e',
    `await import(${JSON.stringify(server)}); console.log(JSON.stringify(process.moduleLoadList))`]);
  t.false((JSON.parse(stdout) as string[]).includes('NativeModule internal/deps/undici/undici'));
});

test('the host check at start sorts interface names without ICU collation (3 MB of RSS)', async (t) => {
  const probe = new URL('../../agent/adapters/host-probe.js', import.meta.url).href;
  const stdout = JSON.stringify([{ifname: 'lo'}, {ifname: 'eth1'}, {ifname: 'eth0'}]);
  const script = `const {parseIpAddressJson} = await import(${JSON.stringify(probe)});
    const before = process.memoryUsage().rss; parseIpAddressJson(${JSON.stringify(stdout)});
    console.log(process.memoryUsage().rss - before)`;
  const {stdout: grown} = await promisify(execFile)(process.execPath, [...AGENT_NODE_FLAGS, '--input-type=module', '-e', script]);
  t.true(Number(grown) < 1024 * 1024, `RSS grew ${grown} bytes`);
});
