// Pure parsing of web-server access-log lines (Common and Combined Log Format, as nginx and Apache write them by
// default) and the address canonicalisation used to recognise the pair's own hosts in them.

import {parseIpAddress, unmapIpv4} from './net/ip-address.js';

/** One request as the web server logged it. */
export interface AccessLogEntry {
  /** $remote_addr / %h as written: an IPv4 or IPv6 address (or a host name when Apache's HostnameLookups is on). */
  readonly client: string;
  /** Wall-clock ms since the epoch, from [$time_local] / %t with its offset applied; whole seconds. */
  readonly timeMs: number;
  /** undefined when the request line is not `METHOD target [HTTP/x.y]`: nothing received (`"-"`, `""`) or garbage. */
  readonly method: string | undefined;
  /** The request target with the log's escapes undone; undefined exactly when method is. */
  readonly path: string | undefined;
  readonly status: number;
  /** Body bytes sent; undefined for Apache's `-` (%b writes `-` for zero), and where the format has no such field. */
  readonly bytes: number | undefined;
  /** The User-Agent, unescaped; undefined in the common format (or `-` as the server wrote it). */
  readonly userAgent: string | undefined;
  /** The address the request was sent to (nginx $server_addr, Apache %A), where the format shows it. */
  readonly local: string | undefined;
}

/**
 * How the web server writes its access log (confirm.log_format):
 *   combined        nginx's and Apache's default (`combined`), and `common` (the same without referer and agent)
 *   vhost_combined  Apache's `%v:%p` in front of combined (Debian's other_vhosts_access.log)
 *   pattern         a regular expression with named groups: client, time and status required; request, agent and
 *                   local (the address the request was sent to) read when present. time is a CLF date
 *                   (21/Nov/2026:13:45:02 +0100) or ISO 8601 with an offset (nginx $time_iso8601).
 */
export type LogFormat =
  | {readonly kind: 'combined'}
  | {readonly kind: 'vhost_combined'}
  | {readonly kind: 'pattern'; readonly pattern: RegExp};

export const COMBINED: LogFormat = {kind: 'combined'};
/** The named groups a pattern must have, and those it may have. */
export const PATTERN_GROUPS = {required: ['client', 'time', 'status'], optional: ['request', 'agent', 'local', 'bytes']} as const;

// A quoted field: nginx escapes `"` and `\` as \x22 and \x5C, Apache as \" and \\, so an unescaped `"` always
// ends the field and a backslash always starts a two-character (or \xHH) escape.
const QUOTED_TEXT = String.raw`(?:[^"\\]|\\.)*`;
// Each of the first three fields is one token, so Apache's vhost_combined (`%v:%p` in front) is rejected by the
// combined format rather than misread with the virtual host as the client (its own format reads it). Fields after the user agent are tolerated: the stock nginx.org
// package logs `main` (combined + "$http_x_forwarded_for") and Apache has combinedio (+ %I %O); what we read is
// all in the combined prefix.
const FIELDS = [
  String.raw`(?<client>[^\s"]+)`, // Apache %h, nginx $remote_addr
  String.raw` \S+`, // %l: identd, never asked; nginx writes a literal -
  String.raw` (?<user>\S+)`, // %u, $remote_user
  String.raw` \[(?<time>[^\]]*)\]`, // %t, $time_local
  String.raw` "(?<request>${QUOTED_TEXT})"`, // %r, $request
  String.raw` (?<status>\d{3})`, // %>s, $status
  String.raw` (?<bytes>\d+|-)`, // %b (- for 0), $body_bytes_sent
  String.raw`(?: "${QUOTED_TEXT}" "(?<agent>${QUOTED_TEXT})"(?: .*)?)?$`, // combined: referer and user agent
].join('');
const LINE = new RegExp(`^${FIELDS}`);
// vhost_combined: `%v:%p` (the virtual host and port: a name, not the address the request was sent to) first.
const VHOST_LINE = new RegExp(String.raw`^[^\s"]+ ${FIELDS}`);
// ISO 8601 as nginx's $time_iso8601 writes it: 2026-11-21T13:45:02+01:00.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;
const TIME = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/;
// HTTP/0.9 requests have no version ("GET /"); HTTP/2 and 3 are logged as "HTTP/2.0", "HTTP/3.0".
const REQUEST = /^(?<method>[A-Z][A-Z0-9_-]*) (?<path>\S+)(?: HTTP\/\d(?:\.\d)?)?$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
// nginx: \xHH for `"`, `\`, control bytes and bytes >= 0x7F; Apache: \" \\ \b \n \r \t \v and \xHH.
const ESCAPE = /\\x([0-9A-Fa-f]{2})|\\(["\\bnrtv])/g;
const SIMPLE_ESCAPES: Readonly<Record<string, number>> = {'"': 0x22, '\\': 0x5c, b: 0x08, n: 0x0a, r: 0x0d, t: 0x09, v: 0x0b};
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/**
 * Parses one access-log line (with or without its line ending); undefined for anything that is not a complete
 * Common or Combined Log Format line with a real date and an HTTP status 100..599. Never throws.
 *
 * A line whose request is `"-"` (Apache: nothing received before the timeout, e.g. a browser's preconnect or a
 * port scanner) or `""` (nginx 1.22 writes that for the same case) or garbage (a TLS handshake sent to the
 * HTTP port) is returned, with method and path undefined, so it counts as traffic: the server only writes it,
 * with a 400 or 408, after accepting a TCP connection from that client, which proves the client's packets now
 * reach this host, and that is what confirm-traffic must establish. Its status must still be valid like any
 * other line's; the pair's own probes are excluded by address, not by shape.
 */
export function parseAccessLogLine(line: string, format: LogFormat = COMBINED): AccessLogEntry | undefined {
  const regex = format.kind === 'pattern' ? format.pattern : format.kind === 'vhost_combined' ? VHOST_LINE : LINE;
  const fields = regex.exec(stripLineEnding(line))?.groups;
  if (fields === undefined) return undefined;
  const {client, time, request, status: statusText, bytes: bytesText, agent, local} = fields;
  if (client === undefined || time === undefined || statusText === undefined || !/^\d{3}$/.test(statusText)) return undefined;
  // ISO 8601 only where a declared pattern says what its time field is; the combined formats write CLF dates.
  const timeMs = parseLogTime(time) ?? (format.kind === 'pattern' ? parseIsoTime(time) : undefined);
  const status = Number(statusText);
  if (timeMs === undefined || status < 100 || status > 599) return undefined;
  const bytes = bytesText === undefined || bytesText === '-' ? undefined : Number(bytesText);
  if (bytes !== undefined && !Number.isSafeInteger(bytes)) return undefined;
  const requestLine = request === undefined ? undefined : REQUEST.exec(unescapeLogText(request))?.groups;
  const userAgent = agent === undefined || agent === '-' ? undefined : unescapeLogText(agent);
  return {client, timeMs, method: requestLine?.method, path: requestLine?.path, status, bytes, userAgent, local: local === undefined || local === '' ? undefined : local};
}

function parseIsoTime(text: string): number | undefined {
  if (!ISO_TIME.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** confirm.log_format as the config writes it, for messages. */
export function describeLogFormat(format: LogFormat): string {
  return format.kind === 'pattern' ? `the pattern ${format.pattern.source}` : format.kind;
}

/**
 * What format the lines are in, as an operator would name it, for a message that says why they cannot be read:
 * 'combined or common', 'vhost_combined', 'JSON', or 'not one baton knows'.
 */
export function guessLogFormat(lines: readonly string[]): string {
  const most = (format: LogFormat): number => lines.filter((line) => parseAccessLogLine(line, format) !== undefined).length;
  const json = lines.filter((line) => line.trimStart().startsWith('{')).length;
  const candidates: Array<[string, number]> = [['combined or common', most(COMBINED)], ['vhost_combined', most({kind: 'vhost_combined'})], ['JSON', json]];
  const [name, count] = candidates.reduce((best, next) => next[1] > best[1] ? next : best);
  return count === 0 ? 'not one baton knows' : name;
}

/** `21/Nov/2026:13:45:02 +0100` → epoch ms; undefined for an impossible date, time or offset. */
function parseLogTime(text: string): number | undefined {
  const parts = TIME.exec(text);
  if (parts === null) return undefined;
  const [, day, monthName, year, hour, minute, second, sign, offsetHours, offsetMinutes] = parts.map(String);
  const month = MONTHS.indexOf(monthName ?? '');
  const [d, y, h, m, s, oh, om] = [day, year, hour, minute, second, offsetHours, offsetMinutes].map(Number) as [
    number, number, number, number, number, number, number,
  ];
  // Linux strftime never writes a leap second (:60), so 59 is the last valid second.
  if (month < 0 || h > 23 || m > 59 || s > 59 || oh > 23 || om > 59) return undefined;
  const date = new Date(Date.UTC(y, month, d, h, m, s));
  // Date.UTC rolls 31/Feb over into March and maps years below 100 to the 1900s; a round trip rejects both.
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== month || date.getUTCDate() !== d) return undefined;
  const offsetMs = (sign === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  return date.getTime() - offsetMs;
}

/**
 * The canonical text of an address, so `2001:DB8:0::5`, `::ffff:127.0.0.1` and `fe80::1%eth0` match `2001:db8::5`,
 * `127.0.0.1` and `fe80::1`.
 */
export function canonicalAddress(address: string): string {
  // RFC 5952 form (lower case, longest zero run compressed), as nginx and Apache (inet_ntop) write IPv6.
  const ip = parseIpAddress(address);
  if (ip === undefined) return address.toLowerCase();
  // A dual-stack socket reports IPv4 clients as IPv4-mapped addresses; they are the same host as the IPv4 one.
  // A zone names the interface the request came in on (Apache writes it for a link-local client, nginx does not,
  // Node's interface list neither): the host is the address without it.
  return unmapIpv4(ip).address.split('%')[0] ?? ip.address;
}

function stripLineEnding(line: string): string {
  if (line.endsWith('\r\n')) return line.slice(0, -2);
  if (line.endsWith('\n') || line.endsWith('\r')) return line.slice(0, -1);
  return line;
}

/** Undoes the log's escapes; \xHH are bytes, so multi-byte UTF-8 sequences are decoded as a whole. */
function unescapeLogText(text: string): string {
  if (!text.includes('\\')) return text;
  const pieces: Uint8Array[] = [];
  let last = 0;
  for (const escape of text.matchAll(ESCAPE)) {
    pieces.push(utf8Encoder.encode(text.slice(last, escape.index)));
    const [, hex, simple] = escape;
    pieces.push(Uint8Array.of(hex === undefined ? (SIMPLE_ESCAPES[simple ?? ''] ?? 0) : Number.parseInt(hex, 16)));
    last = escape.index + escape[0].length;
  }
  pieces.push(utf8Encoder.encode(text.slice(last)));
  const bytes = new Uint8Array(pieces.reduce((total, piece) => total + piece.length, 0));
  let offset = 0;
  for (const piece of pieces) {
    bytes.set(piece, offset);
    offset += piece.length;
  }
  return utf8Decoder.decode(bytes);
}
