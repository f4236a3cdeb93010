// The drain's graceful command with the privileges the agent has under its systemd unit (only CAP_NET_ADMIN and
// CAP_NET_RAW, no new privileges; the lab starts its agents the same way): real nginx and real Apache in a network
// namespace each get the command the lab configures, and must log that they restarted gracefully and still serve.
// The drain itself only runs this command when connections outlive drain.graceful_after_s, which the switch
// tests' clients rarely do, so it is exercised here on its own.

import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import type {ExecutionContext} from 'ava';
import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import {UNIT_PRIVILEGES} from '../../cli/lab/lab.js';
import {createTopology, destroyTopology, runInNamespace} from '../../cli/lab/namespaces.js';
import {DEFAULT_LAB_TOPOLOGY, LAB_ADDRESSES} from '../../cli/lab/topology-plan.js';
import {startApache, startNginx, type WebServer, type WebServerOptions} from '../../cli/lab/web.js';
import {integrationPrefix, integrationTest} from './helpers.js';

const runner = createExecaRunner();

async function gracefulUnderUnitPrivileges(t: ExecutionContext, start: (options: WebServerOptions) => Promise<WebServer>,
  logged: RegExp): Promise<void> {
  const prefix = integrationPrefix();
  const dir = await mkdtemp(join(tmpdir(), `baton-graceful-${prefix}-`));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  t.teardown(() => destroyTopology(runner, prefix));
  const lab = await createTopology(runner, {...DEFAULT_LAB_TOPOLOGY, prefix});
  const namespace = lab.namespace('primary');
  const server = await start({namespace, dir, hostName: 'primary', listen: [`${LAB_ADDRESSES.primary.svc}:80`]});
  t.teardown(() => server.stop());

  // The same bounding set and no-new-privs as the unit; setpriv execs the command in place.
  await runInNamespace(runner, namespace, 'setpriv', [...UNIT_PRIVILEGES, server.graceful.path, ...server.graceful.args]);
  const errorLog = join(dir, 'error.log');
  let text = '';
  for (let waited = 0; waited < 5000 && !logged.test(text); waited += 100) {
    await sleep(100);
    text = await readFile(errorLog, 'utf8').catch(() => '');
  }
  t.regex(text, logged, `the server's error log (${errorLog}) shows the graceful restart`);
  const page = await runInNamespace(runner, lab.namespace('client'), process.execPath,
    ['-e', `fetch('http://${LAB_ADDRESSES.primary.svc}/').then((r) => r.text()).then((text) => process.stdout.write(text))`]);
  t.regex(page, /served by primary/, 'it still serves');
}

integrationTest('nginx: the graceful command works with only the unit\'s capabilities',
  (t) => gracefulUnderUnitPrivileges(t, startNginx, /signal 1 \(SIGHUP\) received.*reconfiguring/));

integrationTest('Apache: the graceful command works with only the unit\'s capabilities',
  (t) => gracefulUnderUnitPrivileges(t, startApache, /SIGUSR1 received\.\s+Doing graceful restart/));
