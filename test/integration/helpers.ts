// Shared gate of the integration tests: they need root, `ip netns` and the lab's programs. Without them the tests
// skip and say why, except under CI=true, where they fail: CI must never pass without running the real tests.

import {spawnSync} from 'node:child_process';
import test, {type ExecutionContext, type Implementation} from 'ava';
import {newLabPrefix} from '../../cli/lab/topology-plan.js';

// Programs the lab and the real network driver run; each missing one is named in the reason.
const REQUIRED_PROGRAMS: ReadonlyArray<{file: string; args: string[]; pkg: string}> = [
  {file: 'ip', args: ['-V'], pkg: 'iproute2'},
  {file: 'arping', args: ['-V'], pkg: 'iputils-arping'},
  {file: 'ping', args: ['-V'], pkg: 'iputils-ping'},
];

let cachedReason: string | null | undefined;

/** Why the integration tests cannot run on this machine, or undefined when they can. Checked once. */
export function integrationUnavailableReason(): string | undefined {
  if (cachedReason === undefined) cachedReason = findReason() ?? null;
  return cachedReason ?? undefined;
}

function findReason(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces (run `sudo npm test`)';
  const missing = REQUIRED_PROGRAMS.filter((p) => spawnSync(p.file, p.args, {stdio: 'ignore'}).error !== undefined);
  if (missing.length > 0) {
    return `missing ${missing.map((p) => `${p.file} (Debian package ${p.pkg})`).join(', ')}: run \`npm run system-deps\``;
  }
  const netns = spawnSync('ip', ['netns', 'list'], {encoding: 'utf8'});
  if (netns.status !== 0) return `\`ip netns list\` fails here: ${(netns.stderr || netns.stdout).trim()}`;
  return undefined;
}

function isCi(): boolean {
  return process.env['CI'] === 'true';
}

/**
 * Registers a serial integration test. Where the tests cannot run it is skipped with the reason in its title,
 * or, under CI=true, registered as a failing test that says why.
 */
export function integrationTest(title: string, implementation: Implementation<[]>): void {
  const reason = integrationUnavailableReason();
  if (reason === undefined) {
    test.serial(title, implementation);
  } else if (isCi()) {
    test.serial(title, (t) => {
      t.fail(`CI=true but the integration tests cannot run: ${reason}`);
    });
  } else {
    test.serial.skip(`${title} (skipped: ${reason})`, implementation);
  }
}

/**
 * For hooks (test.before): true when the integration tests can run. Otherwise logs the reason and returns false,
 * or, under CI=true, throws it so that every test of the file fails.
 */
export async function skipUnlessIntegration(t: ExecutionContext): Promise<boolean> {
  const reason = integrationUnavailableReason();
  if (reason === undefined) return true;
  if (isCi()) throw new Error(`CI=true but the integration tests cannot run: ${reason}`);
  t.log(`integration tests skipped: ${reason}`);
  return false;
}

/**
 * A fresh prefix for one test file's namespaces: "bt" rather than the CLI's "bl", so that `baton lab down`
 * (which removes every "bl" lab, crashed ones included) never touches a test running beside it.
 * BATON_TEST_LAB_PREFIX (2 to 7 of a-z0-9, a letter first) starts it instead, filled up to 8 characters: on a
 * machine that several people test on, each one's namespaces are then told apart by name (`ip netns list`).
 */
export function integrationPrefix(): string {
  const start = process.env['BATON_TEST_LAB_PREFIX'] ?? 'bt';
  if (!/^[a-z][a-z0-9]{1,6}$/.test(start)) throw new Error(`BATON_TEST_LAB_PREFIX: expected 2 to 7 of a-z0-9, a letter first, got '${start}'`);
  return `${start}${newLabPrefix().slice(start.length)}`;
}
