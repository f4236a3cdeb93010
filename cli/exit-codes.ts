// The CLI's exit statuses, one table for every command: 0 done, 1 error, 2 rolled back (the pair is safe, but
// nothing moved), 64 usage error (a mistake in the command line: sysexits.h's EX_USAGE, so a script can tell "I
// called it wrong" from "it failed"), 130 stopped by Ctrl-C (128 + SIGINT, as shells report it).
//
// `baton status` alone answers in the language of monitoring plugins instead (Nagios, Icinga, Naemon, Zabbix and
// Sensu read it; status-check.ts decides): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Its 1 and 2 do not mean what
// the other commands' do, and need not: status changes nothing, so it has no error of its own to report beyond
// "cannot tell" (3, its usage errors too), and nothing to roll back. Every non-zero status is still "not fine", so a script that ran
// `baton status || alert` keeps working; one that read 1 as "the agent did not answer" now reads 2.

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_ROLLED_BACK = 2;
export const EXIT_USAGE = 64;
export const EXIT_INTERRUPTED = 130;

export type CheckLevel = 'ok' | 'warning' | 'critical' | 'unknown';

/** `baton status`: the monitoring plugins' exit statuses. */
export const STATUS_EXIT: Readonly<Record<CheckLevel, number>> = {ok: 0, warning: 1, critical: 2, unknown: 3};
