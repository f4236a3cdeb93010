// The generated man pages: a --help text and docs/configuration.md become pages groff renders without a warning,
// with every section, command and key of what they are made from.

import {readFile} from 'node:fs/promises';
import {spawnSync} from 'node:child_process';
import test from 'ava';
import {COMMAND_NAMES} from '../../cli/args.js';
import {USAGE} from '../../cli/help.js';
import {parseKeyTables, renderConfigPage, renderHelpPage, roffText, type ManPage} from '../../packaging/man-pages.js';

const root = new URL('../../../', import.meta.url);
const PAGE: ManPage = {name: 'baton', section: 8, summary: 'a summary', source: 'baton 0.1.0-1', date: '2026-12-06',
  files: [['/etc/baton/baton.yaml', 'the config']], seeAlso: ['baton-agent(8)', '/opt/baton/docs/install.md']};

/** groff's rendering and its warnings (-ww: all of them), or undefined where groff is not installed. */
function groff(source: string): {text: string; warnings: string} | undefined {
  const result = spawnSync('groff', ['-man', '-Tutf8', '-ww'], {input: source, encoding: 'utf8'});
  if (result.error !== undefined) return undefined;
  // Bold and underline are overstrikes in -Tutf8 output: keep the letters.
  return {text: result.stdout.replace(/.\x08/g, ''), warnings: result.stderr};
}

test('roff text escapes backslashes, minus signs, a leading dot and characters outside ASCII', (t) => {
  t.is(roffText('--config C:\\x'), '\\-\\-config C:\\ex');
  t.is(roffText('.hidden'), '\\&.hidden');
  t.is(roffText("'quote"), "\\&'quote");
  t.is(roffText('5 × interval – ok'), '5 \\[u00D7] interval \\[u2013] ok');
});

test('baton(8) from the CLI\'s help: its usage, every command, its options and exit status, rendered without a warning', (t) => {
  const page = renderHelpPage(PAGE, USAGE);
  t.true(page.includes('.SH SYNOPSIS\n.B baton <command> [options]\n'));
  for (const section of ['DESCRIPTION', 'COMMANDS', 'OPTIONS', 'EXIT STATUS', 'FILES', 'SEE ALSO']) {
    t.true(page.includes(`\n.SH ${section}\n`), section);
  }
  const rendered = groff(page);
  if (rendered === undefined) return t.log('groff is not installed: the rendering is not checked');
  t.is(rendered.warnings, '');
  for (const command of COMMAND_NAMES) t.regex(rendered.text, new RegExp(`^ +${command}\\b`, 'm'), command);
  t.regex(rendered.text, /--config FILE/, 'options keep their minus signs');
});

test('a help text that does not start with its usage line is refused, not made into a page without a synopsis', (t) => {
  t.throws(() => renderHelpPage(PAGE, 'baton: no usage here'), {message: /does not start with "Usage:"/});
});

test('a sentence with a colon stays in its section; a heading of one or two words starts one', (t) => {
  const page = renderHelpPage(PAGE, 'Usage: x [y]\n\nThe x agent: does things.\n\nExit status: 0 done.\n');
  t.regex(page, /\.SH DESCRIPTION\n\.PP\nThe x agent: does things\.\n\.SH EXIT STATUS\n\.PP\n0 done\.\n/);
});

test('baton.yaml(5) has every key of docs/configuration.md\'s tables, with its default, rendered without a warning', async (t) => {
  const markdown = await readFile(new URL('docs/configuration.md', root), 'utf8');
  const rows = parseKeyTables(markdown);
  for (const key of ['pair', 'listen.address', 'heartbeat.dead_after_ms', 'health.checks', 'script_user']) {
    t.true(rows.some((row) => row.key === key), key);
  }
  const page = renderConfigPage({...PAGE, name: 'baton.yaml', section: 5}, markdown);
  for (const row of rows) t.true(page.includes(`.TP\n.B ${roffText(row.key)}\n`), row.key);
  t.true(page.includes('.SH EXAMPLE\n.PP\n.nf\npair: web'));
  const rendered = groff(page);
  if (rendered === undefined) return t.log('groff is not installed: the rendering is not checked');
  t.is(rendered.warnings, '');
  t.regex(rendered.text, /heartbeat\.dead_after_ms\n +Default: 5 × interval_ms\./);
});

test('a key table cell with a pipe inside backquotes stays one cell', (t) => {
  const rows = parseKeyTables('# x\n\n## Keys\n\n| key | default | what |\n|---|---|---|\n| `a` | `x | y` | one | two |\n\n## Next\n| `b` | c | d |\n');
  t.deepEqual(rows, [{key: 'a', defaultValue: '`x | y`', what: 'one | two'}]);
});

test('docs/configuration.md without its key tables gives no page', (t) => {
  t.throws(() => parseKeyTables('# Configuration\n\n## Example\n'), {message: /no "## Keys" section/});
});
