import { afterAll, describe, expect, test } from 'bun:test';
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestPki } from '../../test/pki.ts';
import { InvalidRequestError } from '../errors.ts';
import {
  AES_KEY_PEM_LABEL,
  assertPrivateKeyMatchesCertificate,
  generateKeyMaterial,
  isKeyAlgorithm,
  KEY_ALGORITHMS,
  type KeyAlgorithm,
  type KeyMaterial,
  MAX_PEM_BYTES,
  parseCertificateChain,
  parsePrivateKeyPem,
} from './material.ts';

const workDir = mkdtempSync(join(tmpdir(), 'secryn-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** Runs openssl (or another tool) in the scratch directory; returns stdout. */
function run(command: string[], input?: string): string {
  const result = Bun.spawnSync(command, {
    cwd: workDir,
    stdin: input === undefined ? undefined : Buffer.from(input),
    stderr: 'pipe',
  });
  if (result.exitCode !== 0)
    throw new Error(`${command.slice(0, 2).join(' ')} failed: ${result.stderr.toString()}`);
  return result.stdout.toString();
}
const openssl = (args: string[], input?: string) => run(['openssl', ...args], input);
const scratch = (name: string) => readFileSync(join(workDir, name), 'utf8');

/** Catches the InvalidRequestError thrown by `action`, checks its field, returns its reason. */
function refusal(action: () => unknown, field: string, input?: string): string {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(InvalidRequestError);
  const details = (caught as InvalidRequestError).details!;
  expect(details.field).toBe(field);
  const reason = String(details.reason);
  // Reasons are fixed sentences: no line of the submitted text may appear in them.
  for (const line of (input ?? '').split('\n').map((l) => l.trim()))
    if (line.length >= 8) expect(reason).not.toContain(line);
  return reason;
}

const pem = (label: string, der: Uint8Array) =>
  `-----BEGIN ${label}-----\n${Buffer.from(der)
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END ${label}-----\n`;

/** Signs with the private PEM and verifies with the public PEM (asymmetric keys). */
function signatureVerifies(material: KeyMaterial): boolean {
  const data = Buffer.from('secryn signature check');
  const digest = material.algorithm === 'ed25519' ? null : 'sha256';
  const signature = sign(digest, data, createPrivateKey(material.privatePem));
  return verify(digest, data, createPublicKey(material.publicPem!), signature);
}

/** Watches the event loop while `work` runs; returns its result and the longest stall. */
async function withLoopWatch<T>(work: () => Promise<T>): Promise<{ result: T; maxGapMs: number }> {
  let last = performance.now();
  let maxGapMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
  }, 5);
  try {
    const result = await work();
    return { result, maxGapMs: Math.max(maxGapMs, performance.now() - last) };
  } finally {
    clearInterval(timer);
  }
}

describe('generateKeyMaterial', () => {
  const generated = new Map<KeyAlgorithm, KeyMaterial>();

  test('RSA-4096 generation does not block the event loop', async () => {
    const started = performance.now();
    const { result, maxGapMs } = await withLoopWatch(() => generateKeyMaterial('rsa-4096'));
    const elapsed = performance.now() - started;
    generated.set('rsa-4096', result);
    // Synchronous generation would stall the loop for the whole run (~0.5–5 s).
    expect(maxGapMs).toBeLessThan(Math.min(250, elapsed / 2));
  }, 60_000);

  for (const algorithm of KEY_ALGORITHMS) {
    test(`${algorithm}: generates and round-trips through parsePrivateKeyPem`, async () => {
      const material = generated.get(algorithm) ?? (await generateKeyMaterial(algorithm));
      expect(material.algorithm).toBe(algorithm);
      const parsed = parsePrivateKeyPem(material.privatePem);
      expect(parsed).toEqual(material); // the stored form is already normal
      if (algorithm === 'aes-256') {
        expect(material.publicPem).toBeNull();
        expect(material.privatePem).toMatch(
          /^-----BEGIN SECRYN AES KEY-----\n[A-Za-z0-9+/]{43}=\n-----END SECRYN AES KEY-----\n$/,
        );
        const key = Buffer.from(material.privatePem.split('\n')[1]!, 'base64');
        expect(key).toHaveLength(32);
        const iv = randomBytes(12);
        const cipher = createCipheriv('aes-256-gcm', key, iv);
        const sealed = Buffer.concat([cipher.update('hello'), cipher.final()]);
        const decipher = createDecipheriv('aes-256-gcm', key, iv).setAuthTag(cipher.getAuthTag());
        expect(Buffer.concat([decipher.update(sealed), decipher.final()]).toString()).toBe('hello');
      } else {
        expect(material.privatePem).toStartWith('-----BEGIN PRIVATE KEY-----\n');
        expect(material.publicPem).toStartWith('-----BEGIN PUBLIC KEY-----\n');
        expect(signatureVerifies(material)).toBe(true);
        // The public key belongs to this private key, not just to some key of the right type.
        const other = await generateKeyMaterial(algorithm);
        expect(other.privatePem).not.toBe(material.privatePem);
        expect(signatureVerifies({ ...material, publicPem: other.publicPem })).toBe(false);
      }
    }, 60_000);
  }

  test('two AES keys differ', async () => {
    const [a, b] = await Promise.all([
      generateKeyMaterial('aes-256'),
      generateKeyMaterial('aes-256'),
    ]);
    expect(a.privatePem).not.toBe(b.privatePem);
  });

  test('an unknown algorithm is refused naming the field', async () => {
    const error = await generateKeyMaterial('rsa-1024' as KeyAlgorithm).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect((error as InvalidRequestError).details).toMatchObject({
      field: 'generate.algorithm',
      reason: expect.stringContaining('rsa-2048, rsa-4096, ec-p256, ec-p384, ed25519, aes-256'),
    });
    expect(isKeyAlgorithm('ec-p256')).toBe(true);
    expect(isKeyAlgorithm('ec-p521')).toBe(false);
  });
});

describe('parsePrivateKeyPem: accepted uploads', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const ed = generateKeyPairSync('ed25519').privateKey;
  const pkcs8 = (key: typeof rsa) => String(key.export({ type: 'pkcs8', format: 'pem' }));

  const cases: [string, string, KeyAlgorithm, string][] = [
    ['PKCS#1 RSA', String(rsa.export({ type: 'pkcs1', format: 'pem' })), 'rsa-2048', pkcs8(rsa)],
    ['PKCS#8 RSA', pkcs8(rsa), 'rsa-2048', pkcs8(rsa)],
    ['SEC1 P-256', String(p256.export({ type: 'sec1', format: 'pem' })), 'ec-p256', pkcs8(p256)],
    ['SEC1 P-384', String(p384.export({ type: 'sec1', format: 'pem' })), 'ec-p384', pkcs8(p384)],
    ['PKCS#8 P-384', pkcs8(p384), 'ec-p384', pkcs8(p384)],
    ['PKCS#8 Ed25519', pkcs8(ed), 'ed25519', pkcs8(ed)],
  ];
  for (const [name, input, algorithm, normal] of cases) {
    test(`${name} → ${algorithm}, normalised to PKCS#8`, () => {
      const parsed = parsePrivateKeyPem(input);
      expect(parsed.algorithm).toBe(algorithm);
      expect(parsed.privatePem).toBe(normal);
      expect(signatureVerifies(parsed)).toBe(true);
    });
  }

  test('CRLF line endings, indentation and surrounding blank lines are tolerated', () => {
    const input = pkcs8(p256);
    const messy = `\r\n\r\n${input
      .trim()
      .split('\n')
      .map((line) => `    ${line}  `)
      .join('\r\n')}\r\n\r\n`;
    expect(parsePrivateKeyPem(messy).privatePem).toBe(input);
  });

  test('openssl tools: genpkey RSA-4096, traditional RSA, ecparam -genkey (with EC PARAMETERS)', () => {
    openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:4096', '-out', 'r.pem']);
    expect(parsePrivateKeyPem(scratch('r.pem')).algorithm).toBe('rsa-4096');
    const traditional = openssl(['rsa', '-in', 'r.pem', '-traditional']);
    expect(traditional).toStartWith('-----BEGIN RSA PRIVATE KEY-----');
    expect(parsePrivateKeyPem(traditional).privatePem).toBe(
      parsePrivateKeyPem(scratch('r.pem')).privatePem,
    );
    const ecparam = openssl(['ecparam', '-name', 'secp384r1', '-genkey']);
    expect(ecparam).toStartWith('-----BEGIN EC PARAMETERS-----');
    const parsed = parsePrivateKeyPem(ecparam);
    expect(parsed.algorithm).toBe('ec-p384');
    expect(signatureVerifies(parsed)).toBe(true);
  });

  test('the public key matches what openssl derives from the upload', () => {
    openssl(['genpkey', '-algorithm', 'ED25519', '-out', 'ed.pem']);
    const expected = openssl(['pkey', '-in', 'ed.pem', '-pubout']);
    expect(parsePrivateKeyPem(scratch('ed.pem')).publicPem).toBe(expected);
  });
});

describe('parsePrivateKeyPem: refusals', () => {
  const field = 'key.value';
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const p256Pem = String(
    generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    }),
  );
  const refuse = (input: string) => refusal(() => parsePrivateKeyPem(input, field), field, input);

  test('encrypted keys (PKCS#8 and traditional), saying so', () => {
    const encryptedPkcs8 = String(
      rsa.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }),
    );
    const encryptedPkcs1 = String(
      rsa.export({ type: 'pkcs1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }),
    );
    expect(encryptedPkcs1).toContain('Proc-Type: 4,ENCRYPTED');
    expect(refuse(encryptedPkcs8)).toStartWith('Encrypted private keys are not supported');
    expect(refuse(encryptedPkcs1)).toStartWith('Encrypted private keys are not supported');
  });

  test('garbage, empty, non-string and oversize input', () => {
    expect(refuse('hunter2 is my password')).toStartWith('Only PEM blocks are allowed');
    expect(refuse('')).toBe('Must not be empty');
    expect(refuse(' \n\t\n')).toBe('Must not be empty');
    expect(refusal(() => parsePrivateKeyPem(42 as unknown as string, field), field)).toBe(
      'Must be a PEM-encoded string',
    );
    const huge = p256Pem + '\n'.repeat(MAX_PEM_BYTES);
    expect(refuse(huge)).toBe(`Must be at most ${MAX_PEM_BYTES} bytes`);
    expect(refuse('-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----')).toStartWith(
      'A PEM block does not contain valid base64',
    );
    expect(refuse('-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----')).toStartWith(
      'A PEM block does not contain valid base64',
    );
    expect(refuse('-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----')).toBe(
      'The private key could not be parsed (corrupted or truncated)',
    );
  });

  test('truncated PEM: missing END line, missing lines, cut base64, trailing DER bytes', () => {
    const lines = p256Pem.trim().split('\n');
    expect(refuse(lines.slice(0, -1).join('\n'))).toStartWith('A PEM block is not terminated');
    expect(refuse([...lines.slice(0, 2), ...lines.slice(-1)].join('\n'))).toBe(
      'The private key could not be parsed (corrupted or truncated)',
    );
    const cut = [...lines.slice(0, 2), lines[2]!.slice(0, 10), ...lines.slice(-1)].join('\n');
    expect(refuse(cut)).toStartWith('A PEM block does not contain valid base64');
    const der = Buffer.from(lines.slice(1, -1).join(''), 'base64');
    expect(refuse(pem('PRIVATE KEY', Buffer.concat([der, Buffer.from([0, 0])])))).toBe(
      'The private key could not be parsed (corrupted or truncated)',
    );
    expect(refuse(p256Pem.replace('END PRIVATE KEY', 'END RSA PRIVATE KEY'))).toStartWith(
      'A PEM block is not terminated',
    );
  });

  test('text before or after the block, and PEM headers', () => {
    expect(refuse(`${p256Pem}junk`)).toStartWith('Only PEM blocks are allowed');
    expect(refuse(`Bag Attributes\n${p256Pem}`)).toStartWith('Only PEM blocks are allowed');
    const withHeader = p256Pem.replace('KEY-----\n', 'KEY-----\nComment: hello\n\n');
    expect(refuse(withHeader)).toBe('PEM headers are not supported');
  });

  test('two keys, a key with a certificate, a certificate, a public key, a CSR', () => {
    const pki = makeTestPki(['example.test']);
    expect(refuse(p256Pem + p256Pem)).toBe('Expected exactly one private key, found several');
    expect(refuse(p256Pem + pki.leafKey)).toBe('Expected exactly one private key, found several');
    expect(refuse(pki.leafKey + pki.leafCert)).toStartWith('Expected only the private key');
    expect(refuse(pki.leafCert)).toBe('This is a certificate, not a private key');
    const publicPem = String(createPublicKey(p256Pem).export({ type: 'spki', format: 'pem' }));
    expect(refuse(publicPem)).toBe('This is a public key; the private key is required');
    writeFileSync(join(workDir, 'csr.key'), p256Pem);
    const csr = openssl(['req', '-new', '-key', 'csr.key', '-subj', '/CN=csr']);
    expect(refuse(csr)).toBe('This is a certificate signing request, not a private key');
  });

  test('unsupported curves name the supported ones', () => {
    openssl([
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:secp256k1',
      '-out',
      'k1.pem',
    ]);
    const curveReason =
      'Unsupported elliptic curve; supported: P-256 (prime256v1), P-384 (secp384r1)';
    expect(refuse(scratch('k1.pem'))).toBe(curveReason);
    expect(refuse(openssl(['ec', '-in', 'k1.pem']))).toBe(curveReason); // SEC1 form
    const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey;
    expect(refuse(String(p521.export({ type: 'pkcs8', format: 'pem' })))).toBe(curveReason);
    expect(refuse(String(p521.export({ type: 'sec1', format: 'pem' })))).toBe(curveReason);
  });

  test('unsupported key types and sizes name the supported ones', () => {
    const typeReason =
      'Unsupported key type; supported: RSA (2048 or 4096 bits), EC (P-256 or P-384), Ed25519, AES-256';
    openssl(['genpkey', '-algorithm', 'ED448', '-out', 'ed448.pem']);
    expect(refuse(scratch('ed448.pem'))).toBe(typeReason);
    openssl([
      'genpkey',
      '-algorithm',
      'RSA-PSS',
      '-pkeyopt',
      'rsa_keygen_bits:2048',
      '-out',
      'pss.pem',
    ]);
    expect(refuse(scratch('pss.pem'))).toBe(typeReason);
    const x25519 = generateKeyPairSync('x25519').privateKey;
    expect(refuse(String(x25519.export({ type: 'pkcs8', format: 'pem' })))).toBe(typeReason);
    // DSA: what `dsaparam -genkey` writes (DSA PARAMETERS + PKCS#8), bare PKCS#8, traditional.
    const dsaFile = openssl(['dsaparam', '-genkey', '1024']);
    expect(dsaFile).toStartWith('-----BEGIN DSA PARAMETERS-----');
    expect(refuse(dsaFile)).toBe(typeReason);
    writeFileSync(join(workDir, 'dsa.pem'), dsaFile);
    expect(refuse(openssl(['pkey', '-in', 'dsa.pem']))).toBe(typeReason);
    const dsaTraditional = openssl(['pkey', '-in', 'dsa.pem', '-traditional']);
    expect(dsaTraditional).toStartWith('-----BEGIN DSA PRIVATE KEY-----');
    expect(refuse(dsaTraditional)).toBe(typeReason);
    // DH
    openssl(['genpkey', '-algorithm', 'DH', '-pkeyopt', 'dh_param:ffdhe2048', '-out', 'dh.pem']);
    expect(refuse(scratch('dh.pem'))).toBe(typeReason);
    // OpenSSH format gets a conversion hint.
    run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', join(workDir, 'id_ed25519')]);
    expect(refuse(scratch('id_ed25519'))).toStartWith('OpenSSH private keys are not supported');

    const rsa3072 = generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey;
    expect(refuse(String(rsa3072.export({ type: 'pkcs8', format: 'pem' })))).toBe(
      'Unsupported RSA key size; supported: 2048 or 4096 bits',
    );
    const rsaE3 = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 });
    expect(refuse(String(rsaE3.privateKey.export({ type: 'pkcs1', format: 'pem' })))).toBe(
      'Unsupported RSA public exponent; it must be at least 65537',
    );
  });

  test('AES blocks must hold exactly 32 bytes', () => {
    const good = pem(AES_KEY_PEM_LABEL, randomBytes(32));
    expect(parsePrivateKeyPem(good)).toEqual({
      algorithm: 'aes-256',
      privatePem: good,
      publicPem: null,
    });
    expect(refuse(pem(AES_KEY_PEM_LABEL, randomBytes(16)))).toBe(
      'An AES key must be exactly 32 bytes (AES-256)',
    );
    expect(refuse(pem(AES_KEY_PEM_LABEL, randomBytes(33)))).toBe(
      'An AES key must be exactly 32 bytes (AES-256)',
    );
  });

  test('the default field is "value"', () => {
    expect(refusal(() => parsePrivateKeyPem('nope'), 'value')).toStartWith('Only PEM blocks');
  });
});

// --- certificates ---------------------------------------------------------------------------

/** `openssl x509` view of a certificate, in the formats Secryn documents. */
function opensslView(certificatePem: string) {
  const out = openssl(
    [
      'x509',
      '-noout',
      '-subject',
      '-issuer',
      '-serial',
      '-dates',
      '-fingerprint',
      '-sha256',
      '-nameopt',
      'utf8,sep_comma_plus_space,esc_2253,esc_ctrl',
    ],
    certificatePem,
  );
  const value = (prefix: string) =>
    out
      .split('\n')
      .find((line) => line.startsWith(prefix))!
      .slice(prefix.length);
  return {
    subject: value('subject='),
    issuer: value('issuer='),
    serial_number: value('serial='),
    not_before: opensslDate(value('notBefore=')),
    not_after: opensslDate(value('notAfter=')),
    fingerprint_sha256: value('sha256 Fingerprint='),
  };
}

/** "Nov  2 15:24:35 2126 GMT" → "2126-11-02T15:24:35Z", parsed by hand. */
function opensslDate(text: string): string {
  const match = /^(\w{3}) +(\d{1,2}) (\d\d):(\d\d):(\d\d) (\d{4}) GMT$/.exec(text);
  if (!match) throw new Error(`unexpected openssl date ${text}`);
  const [, month, day, hh, mm, ss, year] = match;
  const monthNumber = 'JanFebMarAprMayJunJulAugSepOctNovDec'.indexOf(month!) / 3 + 1;
  const pad = (n: string | number) => String(n).padStart(2, '0');
  return `${year}-${pad(monthNumber)}-${pad(day!)}T${hh}:${mm}:${ss}Z`;
}

/**
 * A chain of `depth` certificates made by openssl, leaf first: a self-signed root, then
 * intermediates, then a leaf. EC P-256 throughout (fast).
 */
function makeChain(depth: number, prefix: string): { certs: string[]; keys: string[] } {
  writeFileSync(
    join(workDir, 'ca.ext'),
    'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n' +
      'subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
  );
  writeFileSync(join(workDir, 'leaf.ext'), 'basicConstraints=CA:FALSE\n');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const certs: string[] = [];
  const keys: string[] = [];
  for (let level = 0; level < depth; level++) {
    const name = `${prefix}${level}`;
    if (level === 0) {
      openssl(
        ['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.crt`]
          .concat([
            '-days',
            '2',
            '-subj',
            `/CN=${name}`,
            '-addext',
            'basicConstraints=critical,CA:TRUE',
          ])
          .concat(['-addext', 'keyUsage=critical,keyCertSign']),
      );
    } else {
      const parent = `${prefix}${level - 1}`;
      openssl([
        'req',
        ...ec,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
        '-subj',
        `/CN=${name}`,
      ]);
      openssl(
        ['x509', '-req', '-in', `${name}.csr`, '-CA', `${parent}.crt`, '-CAkey', `${parent}.key`]
          .concat(['-set_serial', String(1000 + level), '-days', '1', '-out', `${name}.crt`])
          .concat(['-extfile', level === depth - 1 ? 'leaf.ext' : 'ca.ext']),
      );
    }
    certs.unshift(scratch(`${name}.crt`));
    keys.unshift(scratch(`${name}.key`));
  }
  return { certs, keys };
}

describe('parseCertificateChain', () => {
  const field = 'certificate';
  const pki = makeTestPki(['example.test', '127.0.0.1']);
  const refuse = (input: string) =>
    refusal(() => parseCertificateChain(input, field), field, input);

  test('leaf + CA: metadata matches openssl, chain is normalised, leaf first', () => {
    const parsed = parseCertificateChain(pki.leafCert + pki.caCert);
    expect(parsed.count).toBe(2);
    expect(parsed.leaf).toEqual(opensslView(pki.leafCert));
    expect(parsed.leaf.subject).toBe('CN=example.test');
    expect(parsed.leaf.issuer).toBe('CN=Secryn test CA');
    expect(parsed.leaf.serial_number).toMatch(/^[0-9A-F]+$/);
    expect(parsed.leaf.fingerprint_sha256).toMatch(/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
    expect(parsed.leaf.not_after).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(parsed.chain).toBe(pki.leafCert + pki.caCert);
  });

  test('a single self-signed certificate; messy whitespace normalises to the same chain', () => {
    const parsed = parseCertificateChain(pki.caCert);
    expect(parsed.count).toBe(1);
    expect(parsed.leaf).toEqual(opensslView(pki.caCert));
    const messy = `\n\n  ${(pki.leafCert + '\n\n' + pki.caCert).replaceAll('\n', '\r\n')}  \n`;
    expect(parseCertificateChain(messy).chain).toBe(pki.leafCert + pki.caCert);
  });

  test('escaped UTF-8 subject, multi-valued RDN, high-bit serial, GeneralizedTime', () => {
    openssl(
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'odd.key', '-out', 'odd.crt']
        .concat(['-days', '36500', '-utf8', '-set_serial', '0x80FF'])
        .concat(['-subj', '/C=US/O=Ex, Inc./OU=Ops+CN=multi/CN=ünïcode "q" \\/x=y;z']),
    );
    const certificate = scratch('odd.crt');
    const parsed = parseCertificateChain(certificate);
    expect(parsed.leaf).toEqual(opensslView(certificate));
    expect(parsed.leaf.subject).toBe(
      'C=US, O=Ex\\, Inc., OU=Ops + CN=multi, CN=ünïcode \\"q\\" /x=y\\;z',
    );
    expect(parsed.leaf.serial_number).toBe('80FF');
    expect(Number(parsed.leaf.not_after.slice(0, 4))).toBeGreaterThan(2100);
    expect(assertPrivateKeyMatchesCertificate(scratch('odd.key'), parsed.chain).algorithm).toBe(
      'rsa-2048',
    );
  });

  test('small serial keeps its leading zero like openssl', () => {
    openssl(
      ['req', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', 's.key', '-out', 's.crt'].concat([
        '-days',
        '1',
        '-subj',
        '/CN=small',
        '-set_serial',
        '5',
      ]),
    );
    const parsed = parseCertificateChain(scratch('s.crt'));
    expect(parsed.leaf.serial_number).toBe('05');
    expect(parsed.leaf).toEqual(opensslView(scratch('s.crt')));
  });

  test('chain order: leaf first is accepted; reversed and shuffled are refused', () => {
    const { certs } = makeChain(4, 'order');
    expect(parseCertificateChain(certs.join('')).count).toBe(4);
    expect(parseCertificateChain(certs.slice(0, 2).join('')).count).toBe(2); // no root: fine
    expect(refuse([...certs].reverse().join(''))).toBe(
      'The chain is in reverse order: list the leaf certificate first, then each issuer',
    );
    const shuffled = [certs[0]!, certs[2]!, certs[1]!, certs[3]!];
    expect(refuse(shuffled.join(''))).toBe(
      'Certificate 1 was not issued by certificate 2; list the leaf certificate first, then each issuer in order',
    );
    expect(refuse(certs[0]! + pki.caCert)).toStartWith('Certificate 1 was not issued by');
    expect(refuse(certs[0]! + certs[0]!)).toBe('Certificate 2 appears more than once');
  });

  test('an issuer with the right name but another key is refused', () => {
    const impostor = makeTestPki(['other.test'], 'Secryn test CA');
    expect(refuse(pki.leafCert + impostor.caCert)).toStartWith('Certificate 1 was not issued by');
    // Without key identifiers only the signature tells the two same-named CAs apart.
    const ca = ['-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    const caExtensions = [
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    ];
    for (const name of ['realCa', 'fakeCa'])
      openssl(
        ['req', ...ca, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '1'].concat([
          '-subj',
          '/CN=Same CA',
          ...caExtensions,
        ]),
      );
    writeFileSync(
      join(workDir, 'noid.ext'),
      'authorityKeyIdentifier=none\nsubjectKeyIdentifier=none\n',
    );
    openssl([
      'req',
      ...ca.slice(1),
      '-keyout',
      'noid.key',
      '-out',
      'noid.csr',
      '-subj',
      '/CN=leaf',
    ]);
    openssl(
      ['x509', '-req', '-in', 'noid.csr', '-CA', 'realCa.crt', '-CAkey', 'realCa.key'].concat([
        '-set_serial',
        '9',
        '-days',
        '1',
        '-extfile',
        'noid.ext',
        '-out',
        'noid.crt',
      ]),
    );
    expect(parseCertificateChain(scratch('noid.crt') + scratch('realCa.crt')).count).toBe(2);
    expect(refuse(scratch('noid.crt') + scratch('fakeCa.crt'))).toStartWith(
      'Certificate 1 was not issued by',
    );
  });

  test('10 certificates pass, 11 are refused', () => {
    const { certs } = makeChain(11, 'long');
    expect(parseCertificateChain(certs.slice(0, 10).join('')).count).toBe(10);
    expect(refuse(certs.join(''))).toBe('At most 10 certificates are allowed');
  });

  test('private keys, other blocks, garbage, truncation, empty and oversize are refused', () => {
    const keyReason =
      'Contains a private key; only certificates belong here (send the private key separately)';
    expect(refuse(pki.leafCert + pki.leafKey)).toBe(keyReason);
    expect(refuse(pki.leafKey)).toBe(keyReason);
    expect(
      refuse(String(createPrivateKey(pki.leafKey).export({ type: 'sec1', format: 'pem' }))),
    ).toBe(keyReason);
    expect(refuse(pem(AES_KEY_PEM_LABEL, randomBytes(32)))).toBe(keyReason);
    const publicPem = String(createPublicKey(pki.leafKey).export({ type: 'spki', format: 'pem' }));
    expect(refuse(pki.leafCert + publicPem)).toBe('Only CERTIFICATE PEM blocks are allowed');
    expect(refuse('not a certificate')).toStartWith('Only PEM blocks are allowed');
    expect(refuse(`${pki.leafCert}trailing text`)).toStartWith('Only PEM blocks are allowed');
    expect(refuse('')).toBe('Must not be empty');
    expect(refuse(pki.leafCert + ' '.repeat(MAX_PEM_BYTES))).toBe(
      `Must be at most ${MAX_PEM_BYTES} bytes`,
    );
    const lines = pki.caCert.trim().split('\n');
    const truncated = [...lines.slice(0, 3), ...lines.slice(-1)].join('\n');
    expect(refuse(pki.leafCert + truncated)).toBe(
      'Certificate 2 could not be parsed as X.509 (corrupted or truncated)',
    );
    const notX509 = pem('CERTIFICATE', Buffer.from('300602010102010a', 'hex'));
    expect(refuse(notX509)).toBe(
      'Certificate 1 could not be parsed as X.509 (corrupted or truncated)',
    );
    expect(refuse(pki.leafCert.replace(/\n-----END CERTIFICATE-----\n$/, ''))).toStartWith(
      'A PEM block is not terminated',
    );
  });
});

describe('assertPrivateKeyMatchesCertificate', () => {
  const pki = makeTestPki(['example.test']);
  const chain = parseCertificateChain(pki.leafCert + pki.caCert).chain;

  test('the leaf key matches and comes back normalised', () => {
    const material = assertPrivateKeyMatchesCertificate(pki.leafKey, chain);
    expect(material).toEqual(parsePrivateKeyPem(pki.leafKey));
    expect(material.algorithm).toBe('ec-p256');
  });

  test('another key of the same type, the CA key, a key of another type: mismatch', async () => {
    const reason = "The private key does not match the certificate's public key";
    const otherP256 = (await generateKeyMaterial('ec-p256')).privatePem;
    expect(refusal(() => assertPrivateKeyMatchesCertificate(otherP256, chain), 'private_key')).toBe(
      reason,
    );
    expect(refusal(() => assertPrivateKeyMatchesCertificate(pki.caKey, chain), 'private_key')).toBe(
      reason,
    );
    const ed = (await generateKeyMaterial('ed25519')).privatePem;
    expect(refusal(() => assertPrivateKeyMatchesCertificate(ed, chain), 'private_key')).toBe(
      reason,
    );
  });

  test('AES keys and unparsable keys are refused naming the field', async () => {
    const aes = (await generateKeyMaterial('aes-256')).privatePem;
    expect(refusal(() => assertPrivateKeyMatchesCertificate(aes, chain, 'key'), 'key')).toBe(
      'An AES key cannot belong to a certificate',
    );
    expect(
      refusal(() => assertPrivateKeyMatchesCertificate('garbage', chain), 'private_key'),
    ).toStartWith('Only PEM blocks are allowed');
  });
});
