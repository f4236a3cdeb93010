// The version `baton --version` and `baton-agent --version` print; test/agent/version.test.ts keeps it equal to
// package.json's "version", so a release bumps both in one commit.

export const VERSION = '0.2.0';
