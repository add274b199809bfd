/**
 * The HTTPS listener: only forward-secret AEAD suites on TLS 1.2 (probed with `openssl
 * s_client` against a real socket), TLS 1.3, nothing older; a private key file readable by
 * group/others and a certificate that is not the key's are refused at start (exit 78).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInstance } from '../src/instance.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { freePort, memoryLogger, runCli, tempDir, testConfig, writeConfig } from './harness.ts';
import { makeTestPki } from './pki.ts';

/** Writes a leaf certificate and its key (0600) for 127.0.0.1 into `dir`. */
function writeTlsPair(dir: string, prefix = 'tls'): { cert: string; key: string } {
  const pki = makeTestPki(['127.0.0.1', 'localhost']);
  const cert = join(dir, `${prefix}.crt`);
  const key = join(dir, `${prefix}.key`);
  writeFileSync(cert, pki.leafCert);
  writeFileSync(key, pki.leafKey, { mode: 0o600 });
  chmodSync(key, 0o600);
  return { cert, key };
}

/**
 * What `openssl s_client` negotiated with the server: the cipher, or undefined if refused.
 * Spawned asynchronously: the server runs in this process and must keep answering.
 */
async function negotiate(port: number, args: string[]): Promise<string | undefined> {
  const proc = Bun.spawn(
    ['openssl', 's_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', ...args],
    { stdin: new TextEncoder().encode('Q\n'), stdout: 'pipe', stderr: 'pipe', timeout: 10_000 },
  );
  const [stdout] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  const cipher = /Cipher is (\S+)/.exec(stdout)?.[1];
  return cipher === undefined || cipher === '(NONE)' ? undefined : cipher;
}

/** A self-signed RSA certificate and key (0600) for 127.0.0.1 in `dir`. */
function writeRsaPair(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'rsa.crt');
  const key = join(dir, 'rsa.key');
  const openssl = Bun.spawnSync(
    [
      'openssl',
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
    ].concat(['-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1']),
    { stderr: 'pipe' },
  );
  if (openssl.exitCode !== 0) throw new Error(openssl.stderr.toString());
  chmodSync(key, 0o600);
  return { cert, key };
}

describe.each([
  ['ECDSA', 'ECDHE-ECDSA'],
  ['RSA', 'ECDHE-RSA'],
])('HTTPS listener with an %s certificate (openssl s_client, real socket)', (kind, kx) => {
  const dir = tempDir();
  let running: RunningServer;
  let port: number;

  beforeAll(() => {
    const { cert, key } = kind === 'RSA' ? writeRsaPair(dir.path) : writeTlsPair(dir.path);
    const instance = createInstance(
      testConfig(dir.path, { server: { tls_cert_file: cert, tls_key_file: key } }),
      memoryLogger(),
    );
    running = startServer(instance, { port: 0, address: '127.0.0.1' });
    port = running.server.port!;
  });
  afterAll(async () => {
    await running.stop();
    dir[Symbol.dispose]();
  });

  test('TLS 1.2 CBC-SHA suites are refused, with or without ECDHE', async () => {
    for (const cipher of [
      'AES128-SHA',
      'AES256-GCM-SHA384',
      `${kx}-AES128-SHA`,
      `${kx}-AES256-SHA`,
    ]) {
      expect(await negotiate(port, ['-tls1_2', '-cipher', cipher])).toBeUndefined();
    }
  });

  test('TLS 1.2 ECDHE with AES-GCM or ChaCha20-Poly1305 connects, and so does TLS 1.3', async () => {
    for (const cipher of [`${kx}-AES128-GCM-SHA256`, `${kx}-CHACHA20-POLY1305`]) {
      expect(await negotiate(port, ['-tls1_2', '-cipher', cipher])).toBe(cipher);
    }
    expect(await negotiate(port, ['-tls1_3'])).toMatch(/^TLS_/);
    // A client offering everything gets a forward-secret AEAD suite.
    expect(await negotiate(port, ['-tls1_2'])).toMatch(new RegExp(`^${kx}-(AES\\d+-GCM|CHACHA20)`));
  });

  test('nothing older than TLS 1.2', async () => {
    expect(await negotiate(port, ['-tls1_1', '-cipher', 'ALL:@SECLEVEL=0'])).toBeUndefined();
  });
});

describe('serve refuses unusable TLS files (exit 78 naming the keys)', () => {
  async function serveWith(dir: string, cert: string, key: string) {
    const port = freePort();
    const configPath = writeConfig(
      dir,
      `[server]\nport = ${port}\ntls_cert_file = "${cert}"\ntls_key_file = "${key}"\n`,
    );
    expect((await runCli(['init', '--config', configPath])).exitCode).toBe(0);
    return runCli(['serve', '--config', configPath]);
  }

  test('a private key file readable by group or others', async () => {
    using dir = tempDir();
    const { cert, key } = writeTlsPair(dir.path);
    chmodSync(key, 0o640);
    const serve = await serveWith(dir.path, cert, key);
    expect(serve.exitCode).toBe(78);
    expect(serve.stderr.trim()).toBe(
      `server.tls_key_file: ${key} has mode 0640; a private key must not be accessible to ` +
        `group or others (fix: chmod 600 ${key})`,
    );
  });

  test('a certificate that does not belong to the private key', async () => {
    using dir = tempDir();
    const { cert } = writeTlsPair(dir.path, 'one');
    const { key } = writeTlsPair(dir.path, 'two');
    const serve = await serveWith(dir.path, cert, key);
    expect(serve.exitCode).toBe(78);
    expect(serve.stderr.trim()).toBe(
      'server.tls_cert_file, server.tls_key_file: the certificate does not belong to the private key',
    );
  });
});
