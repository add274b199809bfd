/**
 * The listener's TLS settings: reads the configured certificate and private key, refuses a key
 * file that group or others can read and a certificate that is not the key's, and pins the
 * protocol versions and cipher suites (Bun's defaults still offer TLS 1.2 CBC suites without
 * forward secrecy).
 */
import { X509Certificate, constants, createPrivateKey } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { ConfigError } from '../config/load.ts';

/**
 * TLS 1.2 suites allowed: ECDHE only (forward secrecy) with an AEAD (AES-GCM or
 * ChaCha20-Poly1305), for ECDSA and RSA certificates. TLS 1.3 suites are all AEAD with
 * ephemeral key exchange and are not configurable in BoringSSL, so they stay on.
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Nothing below TLS 1.2 (Bun has no `minVersion`; these are the OpenSSL/BoringSSL switches). */
const NO_OLD_PROTOCOLS =
  constants.SSL_OP_NO_SSLv2 |
  constants.SSL_OP_NO_SSLv3 |
  constants.SSL_OP_NO_TLSv1 |
  constants.SSL_OP_NO_TLSv1_1;

export type ListenerTls = { cert: string; key: string; ciphers: string; secureOptions: number };

/**
 * The TLS options for `server.tls_cert_file`/`server.tls_key_file`, or undefined for plain HTTP.
 * @throws ConfigError (the CLI's exit 78) naming the key(s) at fault: an unreadable file, a key
 * file accessible to group or others, or a certificate that does not belong to the key.
 */
export function loadListenerTls(server: {
  tls_cert_file?: string;
  tls_key_file?: string;
}): ListenerTls | undefined {
  if (!server.tls_cert_file || !server.tls_key_file) return undefined;
  const cert = readTlsFile('server.tls_cert_file', server.tls_cert_file, false);
  const key = readTlsFile('server.tls_key_file', server.tls_key_file, true);
  checkPair(cert, key);
  return { cert, key, ciphers: TLS12_CIPHERS, secureOptions: NO_OLD_PROTOCOLS };
}

/**
 * Reads one file through one descriptor, so the mode checked is the mode of the file read.
 * `requirePrivate` refuses any group/other permission bit, as for the master key file.
 */
function readTlsFile(configKey: string, path: string, requirePrivate: boolean): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new ConfigError([`${configKey}: cannot read ${path} (${errorCode(error)})`]);
  }
  try {
    const stat = fstatSync(fd);
    if (requirePrivate && process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      const mode = '0' + (stat.mode & 0o777).toString(8).padStart(3, '0');
      throw new ConfigError([
        `${configKey}: ${path} has mode ${mode}; a private key must not be accessible to ` +
          `group or others (fix: chmod 600 ${path})`,
      ]);
    }
    return readFileSync(fd, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError([`${configKey}: cannot read ${path} (${errorCode(error)})`]);
  } finally {
    closeSync(fd);
  }
}

/** Refuses a certificate and key that are not a pair, before the listener would fail on it. */
function checkPair(certPem: string, keyPem: string): void {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch {
    throw new ConfigError(['server.tls_cert_file: not a PEM certificate']);
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    throw new ConfigError(['server.tls_key_file: not an unencrypted PEM private key']);
  }
  if (!matches) {
    throw new ConfigError([
      'server.tls_cert_file, server.tls_key_file: the certificate does not belong to the private key',
    ]);
  }
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'unreadable';
}
