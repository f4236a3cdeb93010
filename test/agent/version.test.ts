// The version the CLI prints is the package's: agent/version.ts must follow package.json when a release bumps it.

import {readFile} from 'node:fs/promises';
import test from 'ava';
import {VERSION} from '../../agent/version.js';

test('agent/version.ts exports the version package.json declares', async (t) => {
  const manifest = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {version: string};
  t.is(VERSION, manifest.version);
});
