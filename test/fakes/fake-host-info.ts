// A HostInfoSource with a fixed answer, editable to make the two hosts drift, or made to fail as a hung probe does.

import type {HostInfo, HostInfoSource} from '../../agent/ports.js';

export class FakeHostInfo implements HostInfoSource {
  info: HostInfo;
  /** When set, collect() throws it. */
  failure: Error | undefined;

  constructor(hostname: string, versions: Record<string, string> = {nginx: '1.22.1', openssl: '3.0.15'}) {
    this.info = {
      hostname,
      os: {distro: 'Debian GNU/Linux', release: '12', kernel: '6.1.0-28-amd64', arch: 'x64'},
      versions,
      loadPerCore: 0.1,
      memory: {totalBytes: 4 * 2 ** 30, availableBytes: 3 * 2 ** 30},
    };
  }

  async collect(): Promise<HostInfo> {
    if (this.failure !== undefined) throw this.failure;
    return this.info;
  }
}
