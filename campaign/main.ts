// `npm run campaign`: the hostile-input and fault campaign. Attacks and breaks a namespace lab on purpose and
// prints one table row per case with what was measured. Exit status 1 when any case failed.
//
//   npm run campaign                    every part, full size (several minutes)
//   npm run campaign -- --fast          the subset CI runs
//   npm run campaign -- --only flood,crash
//   npm run campaign -- --prefix blh3   every lab's name starts so (bl and up to 5 more), e.g. to tell runs apart

import {mkdtemp, readdir, rm, stat} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {parseArgs} from 'node:util';
import {customAlphabet} from 'nanoid';
import {createExecaRunner} from '../agent/adapters/execa-runner.js';
import {describeError} from '../agent/errors.js';
import {labDown} from '../cli/lab/lab.js';
import {LAB_PREFIX_PATTERN, newLabPrefix} from '../cli/lab/topology-plan.js';
import type {CampaignContext, CampaignPart, CaseResult} from './case.js';
import {PARTS} from './parts.js';

const {values} = parseArgs({options: {
  fast: {type: 'boolean', default: false},
  only: {type: 'string'},
  prefix: {type: 'string'},
}});

// A lab's name is "bl" and 6 more (LAB_PREFIX_PATTERN); --prefix fixes the first few, the rest are random.
const PREFIX_STEM = /^bl[0-9a-z]{0,5}$/;
const labIdChars = customAlphabet('0123456789abcdefghijklmnopqrstuvwxyz', 6);

function labPrefixMaker(stem: string | undefined): () => string {
  if (stem === undefined) return newLabPrefix;
  if (!PREFIX_STEM.test(stem)) throw new Error(`--prefix: expected "bl" and at most 5 more lowercase letters or digits, got '${stem}'`);
  return () => `${stem}${labIdChars().slice(0, 8 - stem.length)}`;
}

function selectParts(only: string | undefined): CampaignPart[] {
  if (only === undefined) return [...PARTS];
  const names = only.split(',').map((n) => n.trim()).filter((n) => n !== '');
  const unknown = names.filter((n) => !PARTS.some((p) => p.name === n));
  if (unknown.length > 0) {
    throw new Error(`--only: unknown part ${unknown.join(', ')}; the parts are ${PARTS.map((p) => p.name).join(', ')}`);
  }
  return PARTS.filter((p) => names.includes(p.name));
}

function printTable(rows: readonly CaseResult[]): void {
  // The longest name in use (64): the crash part's "link, switchback by backup, after primary-net-down, kill primary".
  const width = {group: Math.max(4, ...rows.map((r) => r.group.length)), name: Math.min(64, Math.max(4, ...rows.map((r) => r.name.length)))};
  console.log(`\n${'part'.padEnd(width.group)}  ${'case'.padEnd(width.name)}  result  figures`);
  for (const row of rows) {
    console.log(`${row.group.padEnd(width.group)}  ${row.name.padEnd(width.name)}  ${(row.ok ? 'pass' : 'FAIL').padEnd(6)}  ${row.figures}`);
  }
  const failed = rows.filter((r) => !r.ok);
  for (const row of failed) console.log(`\nFAIL ${row.group} / ${row.name}: ${row.detail ?? row.figures}`);
  console.log(`\n${rows.length} cases, ${rows.length - failed.length} passed, ${failed.length} failed`);
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error('the campaign builds network namespaces: run it as root');
  const parts = selectParts(values.only);
  const newPrefix = labPrefixMaker(values.prefix);
  const dir = await mkdtemp(join(tmpdir(), 'baton-campaign-'));
  const started = Date.now();
  const context: CampaignContext = {
    fast: values.fast, runner: createExecaRunner(), dir, newLabPrefix: newPrefix,
    keptLogs: join(tmpdir(), `baton-campaign-logs-${new Date(started).toISOString().replaceAll(/[:.]/g, '-')}`),
    say: (line) => console.log(`  ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s  ${line}`),
  };
  // Interrupted (Ctrl-C, a CI timeout): remove this run's labs, and only this run's, before leaving. process.on, not
  // once: execa's exit handler (signal-exit) re-raises the signal, killing us mid-cleanup, as soon as it sees no
  // other listener for it, which a once-listener no longer is while it runs (measured: a Ctrl-C left a lab up).
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupted) return;
      interrupted = true;
      console.log(`\n${signal}: removing this run's labs`);
      void (async () => {
        for (const name of await readdir(dir).catch(() => [] as string[])) {
          if (LAB_PREFIX_PATTERN.test(name)) await labDown(context.runner, name, dir).catch(() => undefined);
        }
        await rm(dir, {recursive: true, force: true});
        process.exit(130);
      })();
    });
  }
  const rows: CaseResult[] = [];
  console.log(`baton campaign${values.fast ? ' (fast subset)' : ''}: ${parts.map((p) => p.name).join(', ')}`);
  try {
    for (const part of parts) {
      console.log(`\n== ${part.name}: ${part.about}`);
      try {
        const results = await part.run(context);
        for (const r of results) context.say(`${r.ok ? 'pass' : 'FAIL'}  ${r.name}: ${r.figures}`);
        rows.push(...results);
      } catch (error) {
        rows.push({group: part.name, name: 'could not run', ok: false, figures: '-', detail: describeError(error)});
        context.say(`FAIL  ${part.name} could not run: ${describeError(error)}`);
      }
    }
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
  printTable(rows);
  if (await stat(context.keptLogs).then(() => true, () => false)) console.log(`agent logs of the failed cases: ${context.keptLogs}`);
  console.log(`campaign took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return rows.every((r) => r.ok) ? 0 : 1;
}

process.exitCode = await main();
