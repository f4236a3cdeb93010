#!/usr/bin/env node
// `baton`: thin entry. Parse, dispatch, print; exit status from one table (exit-codes.ts): 0 done, 1 error, 2 rolled back,
// 64 usage error; `baton status` the monitoring plugins' 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

import {describeError, isBatonError, type ErrorCode} from '../agent/errors.js';
import {commandAsked, isCommandName, parseCommandLine, UsageError, type Command} from './args.js';
import * as checkConfig from './commands/check-config.js';
import * as install from './commands/install.js';
import * as lab from './commands/lab.js';
import * as rehearse from './commands/rehearse.js';
import * as resume from './commands/resume.js';
import * as drain from './commands/drain.js';
import * as status from './commands/status.js';
import * as switchover from './commands/switchover.js';
import * as uninstall from './commands/uninstall.js';
import {EXIT_ERROR, EXIT_OK, EXIT_ROLLED_BACK, EXIT_USAGE, STATUS_EXIT} from './exit-codes.js';
import {commandHelp, USAGE} from './help.js';
import {processOutput, type Output} from './output.js';
import {VERSION} from '../agent/version.js';

const EXIT_BY_CODE: Partial<Record<ErrorCode, number>> = {
  ROLLED_BACK: EXIT_ROLLED_BACK,
  TRAFFIC_NOT_CONFIRMED: EXIT_ROLLED_BACK,
};

async function dispatch(command: Command, out: Output): Promise<number> {
  switch (command.name) {
    case 'help':
      out.stdout(`${command.command === undefined ? USAGE : commandHelp(command.command)}\n`);
      return EXIT_OK;
    case 'version':
      out.stdout(`baton ${VERSION}\n`);
      return EXIT_OK;
    case 'status':
      return status.run(out, command);
    case 'switchover':
      return switchover.run(out, command);
    case 'resume':
      return resume.run(out, command);
    case 'drain':
      return drain.run(out, command);
    case 'rehearse':
      return rehearse.run(out, command);
    case 'check-config':
      return checkConfig.run(out, command);
    case 'lab':
      return lab.run(out, command);
    case 'install':
      return install.run(out, command);
    case 'uninstall':
      return uninstall.run(out, command);
  }
}

async function main(argv: readonly string[], out: Output): Promise<number> {
  let command: Command;
  try {
    command = parseCommandLine(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    // A monitoring system runs status: a mistake in its command line is UNKNOWN there, not the 1 of WARNING.
    const asked = commandAsked(argv);
    if (asked.name === 'status' && asked.json) {
      out.stdout(status.usageErrorJson(error.message));
      return STATUS_EXIT.unknown;
    }
    const help = isCommandName(asked.name) ? `\`baton help ${asked.name}\` for its options` : '`baton --help` for every command and its options';
    out.stderr(error.showUsage ? `baton: ${error.message}\n\n${USAGE}\n` : `baton: ${error.message}\nRun ${help}.\n`);
    return asked.name === 'status' ? STATUS_EXIT.unknown : EXIT_USAGE;
  }
  try {
    return await dispatch(command, out);
  } catch (error) {
    out.stderr(`baton: ${describeError(error)}\n`);
    return isBatonError(error) ? EXIT_BY_CODE[error.code] ?? EXIT_ERROR : EXIT_ERROR;
  }
}

process.exitCode = await main(process.argv.slice(2), processOutput);
