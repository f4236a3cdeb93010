// The package's bash completion offers what the parser accepts: the commands, and for each command exactly the
// options parseCommandLine does not refuse as another command's.

import {execFileSync} from 'node:child_process';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {COMMAND_NAMES, OPTIONS, parseCommandLine} from '../../cli/args.js';
import {renderBashCompletion} from '../../packaging/completion.js';

/** What bash offers after `words` (the last one being completed), with the generated script loaded. */
async function complete(script: string, words: readonly string[]): Promise<string[]> {
  const shell = `. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _baton; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return execFileSync('bash', ['-c', shell, 'bash', script, ...words], {encoding: 'utf8'}).split('\n').filter((w) => w !== '');
}

/** Whether the parser takes `--option` for `command`, for lab in any of its actions (it may still want other
 *  options: only this refusal counts). The completion offers a command's options, not an action's. */
function accepts(command: string, option: string): boolean {
  const value = OPTIONS[option as keyof typeof OPTIONS].type === 'string' ? ['x'] : [];
  return (command === 'lab' ? ['up', 'status', 'down', 'run'] : ['']).some((action) => {
    try {
      parseCommandLine([command, ...(action === '' ? [] : [action]), `--${option}`, ...value]);
      return true;
    } catch (error) {
      return !/is an option of/.test((error as Error).message);
    }
  });
}

test('bash completes the commands, and for each command exactly the options the parser accepts for it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'baton-completion-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  const script = join(dir, 'baton');
  await writeFile(script, renderBashCompletion());
  const first = await complete(script, ['baton', '']);
  t.deepEqual(first.filter((word) => !word.startsWith('-')), [...COMMAND_NAMES, 'help']);
  for (const command of COMMAND_NAMES) {
    const offered = (await complete(script, ['baton', command, '--'])).sort();
    const expected = Object.keys(OPTIONS).filter((option) => accepts(command, option)).map((option) => `--${option}`).sort();
    t.deepEqual(offered, expected, command);
  }
  t.deepEqual(await complete(script, ['baton', '--config', '/x', 'sw']), ['switchover'], 'an option\'s value is not the command');
  t.deepEqual(await complete(script, ['baton', 'install', '--role', '']), ['primary', 'backup']);
  t.deepEqual((await complete(script, ['baton', 'lab', ''])).filter((word) => !word.startsWith('-')), ['up', 'status', 'down', 'run']);
  t.deepEqual(await complete(script, ['baton', 'help', 'sw']), ['switchover'], 'help completes a command\'s name');
  t.deepEqual(await complete(script, ['baton', 'help', 'lab', '']), [], 'and nothing after it');
});
