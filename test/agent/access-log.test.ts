// Tests for the access-log line parser, on lines as nginx 1.22 and Apache 2.4 write them with their default formats.

import test from 'ava';
import {canonicalAddress, guessLogFormat, parseAccessLogLine, type AccessLogEntry, type LogFormat} from '../../agent/access-log.js';
import {CAPTURED_V6} from '../fixtures/access-lines-v6.js';

const at = (iso: string): number => Date.parse(iso);

// The user agent and the local address have tests of their own below.
const parses = test.macro({
  exec(t, line: string, expected: Omit<AccessLogEntry, 'userAgent' | 'local'>) {
    const parsed = parseAccessLogLine(line);
    t.not(parsed, undefined);
    const {userAgent: _agent, local: _local, ...rest} = parsed ?? {userAgent: undefined, local: undefined};
    t.deepEqual(rest, expected);
  },
  title: (note = '') => `parses ${note}`,
});

const rejects = test.macro({
  exec(t, line: string) {
    t.is(parseAccessLogLine(line), undefined);
  },
  title: (note = '') => `rejects ${note}`,
});

// Captured from nginx 1.22.1 (Debian 12) with `access_log FILE;`, i.e. log_format combined, driven by curl and raw
// sockets; the timezone lines come from the same nginx started with TZ set.
test('an nginx combined line from IPv4', parses,
  '127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "GET /index.html HTTP/1.1" 200 3 "-" "curl/7.88.1"',
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:17Z'), method: 'GET', path: '/index.html', status: 200, bytes: 3});
test('an nginx combined line from IPv6 loopback', parses,
  '::1 - - [21/Nov/2026:13:47:17 +0000] "GET /a?b=c HTTP/1.1" 200 3 "-" "curl/7.88.1"',
  {client: '::1', timeMs: at('2026-11-21T13:47:17Z'), method: 'GET', path: '/a?b=c', status: 200, bytes: 3});
test('an nginx line with a global IPv6 client', parses,
  '2001:db8::5 - - [21/Nov/2026:13:47:17 +0000] "GET / HTTP/2.0" 304 0 "https://www.example.com/" "Mozilla/5.0"',
  {client: '2001:db8::5', timeMs: at('2026-11-21T13:47:17Z'), method: 'GET', path: '/', status: 304, bytes: 0});
test('nginx \\x22 and \\x5C escapes in referer and user agent', parses,
  String.raw`127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "GET /q%22 HTTP/1.1" 200 3 "http://example.com/ref\x22x" "Mozilla/5.0 (X11; Linux x86_64) \x22quoted\x22 \x5Cback"`,
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:17Z'), method: 'GET', path: '/q%22', status: 200, bytes: 3});
test('an nginx escaped quote inside the request', parses,
  String.raw`127.0.0.1 - - [21/Nov/2026:13:47:21 +0000] "GET /a\x22b HTTP/1.0" 200 3 "-" "-"`,
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:21Z'), method: 'GET', path: '/a"b', status: 200, bytes: 3});
test('an nginx basic-auth user', parses,
  '127.0.0.1 - alice [21/Nov/2026:13:47:17 +0000] "GET /secret HTTP/1.1" 200 3 "-" "curl/7.88.1"',
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:17Z'), method: 'GET', path: '/secret', status: 200, bytes: 3});
test('an nginx HEAD with an empty body', parses,
  '127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "HEAD /empty HTTP/1.1" 204 0 "-" "curl/7.88.1"',
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:17Z'), method: 'HEAD', path: '/empty', status: 204, bytes: 0});
test('an nginx HTTP/0.9 request line', parses,
  '127.0.0.1 - - [21/Nov/2026:13:47:21 +0000] "GET /" 200 3 "-" "-"',
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:21Z'), method: 'GET', path: '/', status: 200, bytes: 3});
test('an nginx UTF-8 user agent written as \\xHH bytes', parses,
  String.raw`127.0.0.1 - - [21/Nov/2026:13:47:21 +0000] "GET /x HTTP/1.1" 200 3 "-" "caf\xC3\xA9"`,
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:21Z'), method: 'GET', path: '/x', status: 200, bytes: 3});
test('nginx at +0100 (TZ=Europe/Paris)', parses,
  '127.0.0.1 - - [21/Nov/2026:14:47:43 +0100] "GET /tz?Europe/Paris HTTP/1.1" 200 3 "-" "curl/7.88.1"',
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:43Z'), method: 'GET', path: '/tz?Europe/Paris', status: 200, bytes: 3});
test('nginx at -0500 (TZ=America/New_York)', parses,
  '127.0.0.1 - - [21/Nov/2026:08:47:44 -0500] "GET /tz?America/New_York HTTP/1.1" 200 3 "-" "curl/7.88.1"',
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:44Z'), method: 'GET', path: '/tz?America/New_York', status: 200, bytes: 3});
test('nginx at +0530 (TZ=Asia/Kolkata)', parses,
  '127.0.0.1 - - [21/Nov/2026:19:17:45 +0530] "GET /tz?Asia/Kolkata HTTP/1.1" 200 3 "-" "curl/7.88.1"',
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:45Z'), method: 'GET', path: '/tz?Asia/Kolkata', status: 200, bytes: 3});
test('an offset that moves the date back across midnight', parses,
  '198.51.100.7 - - [01/Jan/2027:00:30:00 +0100] "GET / HTTP/1.1" 200 612 "-" "Mozilla/5.0"',
  {client: '198.51.100.7', timeMs: at('2026-12-31T23:30:00Z'), method: 'GET', path: '/', status: 200, bytes: 612});
test('a line ending in \\r\\n', parses,
  '127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "GET /index.html HTTP/1.1" 200 3 "-" "curl/7.88.1"\r\n',
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:17Z'), method: 'GET', path: '/index.html', status: 200, bytes: 3});
test('a line ending in \\r', parses,
  '127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "GET /index.html HTTP/1.1" 200 3 "-" "curl/7.88.1"\r',
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:17Z'), method: 'GET', path: '/index.html', status: 200, bytes: 3});
test('the nginx.org package format main (combined + X-Forwarded-For)', parses,
  '203.0.113.4 - - [21/Nov/2026:13:47:17 +0000] "GET / HTTP/1.1" 200 615 "-" "curl/8.5.0" "-"',
  {client: '203.0.113.4', timeMs: at('2026-11-21T13:47:17Z'), method: 'GET', path: '/', status: 200, bytes: 615});

// Requests that are not `METHOD target`: the server accepted a connection from the client and answered, so they
// count as traffic (see parseAccessLogLine), with method and path undefined.
test('an nginx empty request line (bare CRLF, then close)', parses,
  '127.0.0.1 - - [21/Nov/2026:13:47:28 +0000] "" 400 0 "-" "-"',
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:28Z'), method: undefined, path: undefined, status: 400, bytes: 0});
test('an nginx request-header timeout', parses,
  '127.0.0.1 - - [21/Nov/2026:13:47:29 +0000] "" 408 0 "-" "-"',
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:29Z'), method: undefined, path: undefined, status: 408, bytes: 0});
test('an nginx TLS handshake on the HTTP port', parses,
  String.raw`127.0.0.1 - - [21/Nov/2026:13:47:21 +0000] "\x16\x03\x01\x00\xA5\x01\x00\x00\xA1\x03\x03" 400 157 "-" "-"`,
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:21Z'), method: undefined, path: undefined, status: 400, bytes: 157});
test('an nginx SSH probe', parses,
  '127.0.0.1 - - [21/Nov/2026:13:47:21 +0000] "SSH-2.0-Go" 400 157 "-" "-"',
  {client: '127.0.0.1', timeMs: at('2026-11-21T13:47:21Z'), method: undefined, path: undefined, status: 400, bytes: 157});
test('an Apache "-" request (connection closed before a request line)', parses,
  '192.0.2.9 - - [21/Nov/2026:13:45:07 +0000] "-" 408 -',
  {client: '192.0.2.9', timeMs: at('2026-11-21T13:45:07Z'), method: undefined, path: undefined, status: 408, bytes: undefined});
test('an Apache combined "-" request', parses,
  '192.0.2.9 - - [21/Nov/2026:13:45:07 +0000] "-" 400 0 "-" "-"',
  {client: '192.0.2.9', timeMs: at('2026-11-21T13:45:07Z'), method: undefined, path: undefined, status: 400, bytes: 0});

// Apache 2.4: httpd.conf's `common` (%h %l %u %t \"%r\" %>s %b) and `combined` (+ \"%{Referer}i\" \"%{User-agent}i\");
// Debian's combined writes %O (never -) instead of %b. The first two are the examples of Apache's log docs.
test('the Apache common example', parses,
  '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
  {client: '127.0.0.1', timeMs: at('2000-10-10T20:55:36Z'), method: 'GET', path: '/apache_pb.gif', status: 200, bytes: 2326});
test('the Apache combined example', parses,
  '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"',
  {client: '127.0.0.1', timeMs: at('2000-10-10T20:55:36Z'), method: 'GET', path: '/apache_pb.gif', status: 200, bytes: 2326});
test('Apache common with - bytes', parses,
  '192.0.2.21 - - [21/Nov/2026:14:45:02 +0100] "GET /health HTTP/1.1" 204 -',
  {client: '192.0.2.21', timeMs: at('2026-11-21T13:45:02Z'), method: 'GET', path: '/health', status: 204, bytes: undefined});
test('Apache combined with - bytes from IPv6', parses,
  '2001:db8::5 - - [21/Nov/2026:08:45:02 -0500] "POST /api/login HTTP/1.1" 302 - "https://www.example.com/login" "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"',
  {client: '2001:db8::5', timeMs: at('2026-11-21T13:45:02Z'), method: 'POST', path: '/api/login', status: 302, bytes: undefined});
test('Apache \\" escapes in request and user agent', parses,
  String.raw`192.0.2.21 - - [21/Nov/2026:13:45:02 +0000] "GET /a\"b HTTP/1.1" 404 196 "-" "curl \"7\" \\ok"`,
  {client: '192.0.2.21', timeMs: at('2026-11-21T13:45:02Z'), method: 'GET', path: '/a"b', status: 404, bytes: 196});
test('Apache Debian combined (%O)', parses,
  '::1 - - [21/Nov/2026:13:45:02 +0000] "OPTIONS * HTTP/1.0" 200 126 "-" "Apache/2.4.62 (Debian) (internal dummy connection)"',
  {client: '::1', timeMs: at('2026-11-21T13:45:02Z'), method: 'OPTIONS', path: '*', status: 200, bytes: 126});

const CAPTURED_AT = at('2026-12-06T13:44:26Z');

test('nginx, IPv6 client', parses, CAPTURED_V6.nginx,
  {client: '2001:db8:14::1', timeMs: CAPTURED_AT, method: 'GET', path: '/', status: 200, bytes: 3});
test('nginx, IPv6 client whose address has two zero runs', parses, CAPTURED_V6.nginxZeros,
  {client: '2001:db8::1:0:0:20', timeMs: CAPTURED_AT, method: 'GET', path: '/?from=zeros', status: 200, bytes: 3});
test('nginx, link-local client', parses, CAPTURED_V6.nginxLinkLocal,
  {client: 'fe80::d41e:2aff:fe0b:7b11', timeMs: CAPTURED_AT, method: 'GET', path: '/?from=linklocal', status: 200, bytes: 3});
test('nginx dual-stack, IPv4 client', parses, CAPTURED_V6.nginxMapped,
  {client: '::ffff:192.0.2.141', timeMs: CAPTURED_AT, method: 'GET', path: '/?from=v4', status: 200, bytes: 3});
test('Apache, IPv6 client', parses, CAPTURED_V6.apache,
  {client: '2001:db8:14::1', timeMs: CAPTURED_AT, method: 'GET', path: '/', status: 200, bytes: 203});
test('Apache, IPv6 client whose address has two zero runs', parses, CAPTURED_V6.apacheZeros,
  {client: '2001:db8::1:0:0:20', timeMs: CAPTURED_AT, method: 'GET', path: '/?from=zeros', status: 200, bytes: 203});
test('Apache, link-local client with its zone', parses, CAPTURED_V6.apacheLinkLocal,
  {client: 'fe80::d41e:2aff:fe0b:7b11%blh14y', timeMs: CAPTURED_AT, method: 'GET', path: '/?from=linklocal', status: 200, bytes: 203});
test('Apache dual-stack, IPv4 client', parses, CAPTURED_V6.apacheDualStackV4,
  {client: '192.0.2.141', timeMs: CAPTURED_AT, method: 'GET', path: '/?from=v4', status: 200, bytes: 203});

test('an empty line', rejects, '');
test('a line of text', rejects, 'hello world');
test('a line cut in the middle of the request', rejects, '127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "GET /index.html HTT');
test('a line cut after the status', rejects, '127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "GET / HTTP/1.1" 200');
test('a line cut inside the user agent', rejects, '127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "GET / HTTP/1.1" 200 3 "-" "curl/7.');
test('an unescaped quote inside the request', rejects, '127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "GET /a"b HTTP/1.1" 200 3 "-" "-"');
test('a status of -', rejects, '127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "-" - 0 "-" "-"');
test('a status above 599', rejects, '127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "GET / HTTP/1.1" 999 3 "-" "-"');
test('a status below 100', rejects, '127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "-" 000 0 "-" "-"');
test('a month that does not exist', rejects, '127.0.0.1 - - [21/Foo/2026:13:47:17 +0000] "GET / HTTP/1.1" 200 3 "-" "-"');
test('31 November', rejects, '127.0.0.1 - - [31/Nov/2026:13:47:17 +0000] "GET / HTTP/1.1" 200 3 "-" "-"');
test('hour 24', rejects, '127.0.0.1 - - [21/Nov/2026:24:00:00 +0000] "GET / HTTP/1.1" 200 3 "-" "-"');
test('an offset with 60 minutes', rejects, '127.0.0.1 - - [21/Nov/2026:13:47:17 +0160] "GET / HTTP/1.1" 200 3 "-" "-"');
test('an ISO 8601 time (nginx $time_iso8601)', rejects, '127.0.0.1 - - [2026-11-21T13:47:17+00:00] "GET / HTTP/1.1" 200 3 "-" "-"');
test('bytes that are not a number', rejects, '127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "GET / HTTP/1.1" 200 3k "-" "-"');
test('an nginx error-log line', rejects, '2026/11/21 13:47:17 [error] 4711#4711: *1 open() "/srv/www/favicon.ico" failed (2: No such file or directory)');
test('a JSON log line', rejects, '{"time":"2026-11-21T13:47:17+00:00","remote_addr":"127.0.0.1","status":200}');
test('Apache vhost_combined (virtual host in front)', rejects,
  'www.example.com:80 127.0.0.1 - - [21/Nov/2026:13:45:02 +0000] "GET / HTTP/1.1" 200 3 "-" "curl/7.88.1"');
test('two lines glued together', rejects,
  '127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "GET / HTTP/1.1" 200 3 "-" "-"\n127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "GET / HTTP/1.1" 200 3 "-" "-"');

test('parsing never throws, even on binary noise', (t) => {
  for (let seed = 1; seed <= 200; seed += 1) {
    const noise = Array.from({length: seed}, (_, i) => String.fromCharCode((seed * 7919 + i * 104_729) % 256)).join('');
    t.notThrows(() => parseAccessLogLine(`127.0.0.1 - - [21/Nov/2026:13:47:17 +0000] "${noise}" 200 3 "-" "${noise}"`));
    t.notThrows(() => parseAccessLogLine(noise));
  }
});

const canonical = test.macro({
  exec(t, written: string, expected: string) {
    t.is(canonicalAddress(written), expected);
  },
  title: (_ = '', written: string, expected: string) => `canonicalAddress(${written}) is ${expected}`,
});

test(canonical, '127.0.0.1', '127.0.0.1');
test(canonical, '2001:DB8:0:0::5', '2001:db8::5');
test(canonical, '2001:db8::5', '2001:db8::5');
test(canonical, '::ffff:192.0.2.7', '192.0.2.7');
test(canonical, '::FFFF:c000:207', '192.0.2.7');
test(canonical, '::1', '::1');
test(canonical, 'Host.Example.COM', 'host.example.com');
test(canonical, '2001:db8:0:0:1::20', '2001:db8::1:0:0:20');
test(canonical, 'fe80::d41e:2aff:fe0b:7b11%blh14y', 'fe80::d41e:2aff:fe0b:7b11');

test('the user agent of a combined line, unescaped; none in a common line or for "-"', (t) => {
  t.is(parseAccessLogLine('192.0.2.20 - - [21/Nov/2026:13:47:17 +0000] "GET / HTTP/1.1" 200 3 "-" "curl/7.88.1"')?.userAgent, 'curl/7.88.1');
  t.is(parseAccessLogLine(String.raw`192.0.2.20 - - [21/Nov/2026:13:47:17 +0000] "GET / HTTP/1.1" 200 3 "-" "a \x22b\x22"`)?.userAgent, 'a "b"');
  t.is(parseAccessLogLine('192.0.2.20 - - [21/Nov/2026:13:47:17 +0000] "GET / HTTP/1.1" 200 3 "-" "-"')?.userAgent, undefined);
  t.is(parseAccessLogLine('192.0.2.20 - - [21/Nov/2026:13:47:17 +0000] "GET / HTTP/1.1" 200 3')?.userAgent, undefined);
});

// Apache 2.4 on Debian: LogFormat "%v:%p %h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"" vhost_combined
const VHOST = 'www.example.com:80 192.0.2.20 - - [21/Nov/2026:13:47:17 +0000] "GET /a HTTP/1.1" 200 512 "-" "curl/7.88.1"';

test('vhost_combined is refused by the combined format and read by its own', (t) => {
  t.is(parseAccessLogLine(VHOST), undefined);
  const parsed = parseAccessLogLine(VHOST, {kind: 'vhost_combined'});
  t.is(parsed?.client, '192.0.2.20');
  t.is(parsed?.status, 200);
  t.is(parsed?.userAgent, 'curl/7.88.1');
});

test('a declared pattern reads its named groups, the local address and an ISO 8601 time included', (t) => {
  // nginx: log_format local '$server_addr $remote_addr [$time_iso8601] "$request" $status "$http_user_agent"';
  const format: LogFormat = {kind: 'pattern', pattern: /^(?<local>\S+) (?<client>\S+) \[(?<time>[^\]]+)\] "(?<request>[^"]*)" (?<status>\d{3}) "(?<agent>[^"]*)"$/};
  const parsed = parseAccessLogLine('192.0.2.100 192.0.2.20 [2026-11-21T14:47:17+01:00] "GET /x HTTP/1.1" 204 "curl/8"', format);
  t.deepEqual(parsed, {client: '192.0.2.20', timeMs: Date.parse('2026-11-21T13:47:17Z'), method: 'GET', path: '/x', status: 204,
    bytes: undefined, userAgent: 'curl/8', local: '192.0.2.100'});
  t.is(parseAccessLogLine('192.0.2.100 192.0.2.20 [yesterday] "GET /x HTTP/1.1" 204 "curl/8"', format), undefined, 'a time it cannot read');
  t.is(parseAccessLogLine('192.0.2.100 192.0.2.20 [2026-11-21T14:47:17+01:00] "GET /x HTTP/1.1" 999 "curl/8"', format), undefined);
});

test('guessLogFormat names what lines look like, for the message that refuses them', (t) => {
  t.is(guessLogFormat([VHOST, VHOST]), 'vhost_combined');
  t.is(guessLogFormat(['{"time":"2026-11-21T13:47:17+00:00","remote_addr":"192.0.2.20","status":200}']), 'JSON');
  t.is(guessLogFormat(['192.0.2.20 - - [21/Nov/2026:13:47:17 +0000] "GET / HTTP/1.1" 200 3']), 'combined or common');
  t.is(guessLogFormat(['hello world']), 'not one baton knows');
});
