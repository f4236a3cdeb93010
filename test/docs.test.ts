// The docs stay true to the code: the state diagram in docs/states.md is the one in agent/state-machine.ts.

import {readFile} from 'node:fs/promises';
import test from 'ava';

const root = new URL('../../', import.meta.url);

test('the state diagram in docs/states.md is the one in agent/state-machine.ts', async (t) => {
  const source = await readFile(new URL('agent/state-machine.ts', root), 'utf8');
  const doc = await readFile(new URL('docs/states.md', root), 'utf8');
  const fromSource = source.split('\n').filter((line) => line.startsWith('//')).map((line) => line.replace(/^\/\/ ?/, ''));
  const start = fromSource.findIndex((line) => line.includes('probed: IP free, role primary'));
  const end = fromSource.findIndex((line, i) => i > start && line.trim() === '');
  const diagram = fromSource.slice(start, end).join('\n');
  const block = /```\n([\s\S]*?)\n```/.exec(doc.slice(doc.indexOf('## Transitions')))?.[1];
  t.true(diagram.length > 200, 'found the diagram in the source');
  t.is(block, diagram);
});
