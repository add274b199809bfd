/** `serve` resolves `server.host` itself: literals and localhost need no resolver, failures are one line. */
import { describe, expect, test } from 'bun:test';
import { listenAddress } from './serve.ts';
import { CliFailure } from './exit.ts';

const failingLookup = async (): Promise<never> => {
  // What getaddrinfo gives on a host without a working resolver configuration.
  throw Object.assign(new Error('getaddrinfo ENOENT'), { code: 'ENOENT' });
};

describe('listenAddress', () => {
  test('IP literals and localhost are bound without asking the resolver', async () => {
    for (const [host, address] of [
      ['127.0.0.1', '127.0.0.1'],
      ['::1', '::1'],
      ['0.0.0.0', '0.0.0.0'],
      ['localhost', '127.0.0.1'],
      ['LOCALHOST.', '127.0.0.1'],
    ]) {
      expect(await listenAddress({ host: host!, port: 8420 }, failingLookup)).toBe(address!);
    }
  });

  test('a name is resolved through the lookup', async () => {
    const lookup = async (host: string) => ({ address: host === 'db.internal' ? '10.1.2.3' : '' });
    expect(await listenAddress({ host: 'db.internal', port: 1 }, lookup)).toBe('10.1.2.3');
  });

  test('a resolver failure (ENOENT, ENOTFOUND, EAI_AGAIN) is the documented line, exit 1', async () => {
    for (const code of ['ENOENT', 'ENOTFOUND', 'EAI_AGAIN']) {
      const lookup = async (): Promise<never> => {
        throw Object.assign(new Error(code), { code });
      };
      const failure = await listenAddress({ host: 'vault.example', port: 8420 }, lookup).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(CliFailure);
      expect(failure).toMatchObject({
        exitCode: 1,
        message:
          'cannot listen on vault.example:8420 (server.host, server.port): ' +
          'the host is not an address or a name that resolves',
      });
    }
  });
});
