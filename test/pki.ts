/**
 * Throwaway PKI for tests, made with openssl at run time so that no private key is ever
 * committed: a CA and a leaf certificate for the given DNS names / IPs, signed by it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type TestPki = { caCert: string; caKey: string; leafCert: string; leafKey: string };

/** Creates a P-256 CA and a leaf for `names` (DNS names or IP addresses), valid for a day. */
export function makeTestPki(names: string[], caName = 'Secryn test CA'): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'secryn-pki-'));
  const run = (args: string[]) => {
    const result = Bun.spawnSync(['openssl', ...args], { cwd: dir, stderr: 'pipe' });
    if (result.exitCode !== 0)
      throw new Error(`openssl ${args[0]} failed: ${result.stderr.toString()}`);
  };
  try {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    run([
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '1',
      '-subj',
      `/CN=${caName}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    ]);
    run([
      'req',
      ...ec,
      '-keyout',
      'leaf.key',
      '-out',
      'leaf.csr',
      '-subj',
      `/CN=${names[0] ?? 'localhost'}`,
    ]);
    const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
    writeFileSync(
      join(dir, 'leaf.ext'),
      `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
    );
    run([
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'leaf.crt',
      '-days',
      '1',
      '-extfile',
      'leaf.ext',
    ]);
    const read = (name: string) => readFileSync(join(dir, name), 'utf8');
    return {
      caCert: read('ca.crt'),
      caKey: read('ca.key'),
      leafCert: read('leaf.crt'),
      leafKey: read('leaf.key'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
