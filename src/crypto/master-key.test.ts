import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MasterKeyError } from './errors.ts';
import {
  decodeMasterKey,
  encodeMasterKey,
  generateMasterKey,
  loadMasterKey,
  writeNewMasterKeyFile,
} from './master-key.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'secryn-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

function writeKey(file: string, content: string, mode = 0o600): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  fs.chmodSync(file, mode);
}

function loadError(opts: Parameters<typeof loadMasterKey>[0]): MasterKeyError {
  try {
    loadMasterKey(opts);
  } catch (error) {
    expect(error).toBeInstanceOf(MasterKeyError);
    return error as MasterKeyError;
  }
  throw new Error('expected loadMasterKey to fail');
}

describe('encode / decode', () => {
  test('round trip; one trailing newline tolerated', () => {
    const key = generateMasterKey();
    const text = encodeMasterKey(key);
    expect(text).toHaveLength(44);
    expect(hex(decodeMasterKey(text, 'x'))).toBe(hex(key));
    expect(hex(decodeMasterKey(text + '\n', 'x'))).toBe(hex(key));
    expect(hex(decodeMasterKey(text + '\r\n', 'x'))).toBe(hex(key));
  });

  test('rejects wrong lengths, extra whitespace, non-base64 and non-canonical text', () => {
    const text = encodeMasterKey(generateMasterKey());
    const bad = [
      '',
      text.slice(0, 43),
      text.slice(0, 40) + '\n',
      text + '\n\n',
      ' ' + text,
      text.replace(/^./, '!'),
      Buffer.alloc(31).toString('base64'),
      Buffer.alloc(33).toString('base64'),
      text.slice(0, 42) + 'B=', // last char with non-zero unused bits
    ];
    for (const candidate of bad) {
      expect(() => decodeMasterKey(candidate, 'x')).toThrow(MasterKeyError);
    }
  });
});

describe('loadMasterKey', () => {
  test('file source: 0600 and 0400 accepted', () => {
    for (const mode of [0o600, 0o400]) {
      const key = generateMasterKey();
      const file = path.join(dir, `k-${mode.toString(8)}`);
      writeKey(file, encodeMasterKey(key) + '\n', mode);
      const loaded = loadMasterKey({ env: {}, filePath: file });
      expect(loaded.source).toBe('file');
      expect(loaded.path).toBe(file);
      expect(hex(loaded.key)).toBe(hex(key));
    }
  });

  test('file source: 0644 and 0640 refused with mode and chmod fix, no key material', () => {
    for (const [mode, shown] of [
      [0o644, '0644'],
      [0o640, '0640'],
      [0o604, '0604'],
    ] as const) {
      const key = generateMasterKey();
      const file = path.join(dir, `open-${shown}`);
      writeKey(file, encodeMasterKey(key), mode);
      const error = loadError({ env: {}, filePath: file });
      expect(error.reason).toBe('bad_permissions');
      expect(error.message).toContain(shown);
      expect(error.message).toContain(`chmod 600 ${file}`);
      expect(error.message).not.toContain(encodeMasterKey(key));
    }
  });

  test('missing everywhere → missing, naming every place looked', () => {
    const file = path.join(dir, 'absent.key');
    const credDir = path.join(dir, 'creds');
    fs.mkdirSync(credDir);
    const error = loadError({ env: { CREDENTIALS_DIRECTORY: credDir }, filePath: file });
    expect(error.reason).toBe('missing');
    expect(error.message).toContain(file);
    expect(error.message).toContain(path.join(credDir, 'secryn-master-key'));
    expect(error.message).toContain('SECRYN_MASTER_KEY');
  });

  test('truncated file → invalid, saying so, without the content', () => {
    const text = encodeMasterKey(generateMasterKey());
    const file = path.join(dir, 'short.key');
    writeKey(file, text.slice(0, 30) + '\n');
    const error = loadError({ env: {}, filePath: file });
    expect(error.reason).toBe('invalid');
    expect(error.message).toContain('truncated or not base64 of 32 bytes');
    expect(error.message).toContain(file);
    expect(error.message).not.toContain(text.slice(0, 30));
  });

  test('oversized or directory key file refused', () => {
    const big = path.join(dir, 'big.key');
    writeKey(big, 'A'.repeat(5000));
    expect(loadError({ env: {}, filePath: big }).reason).toBe('invalid');
    const asDir = path.join(dir, 'dir.key');
    fs.mkdirSync(asDir, { mode: 0o700 });
    expect(loadError({ env: {}, filePath: asDir }).reason).toBe('unreadable');
  });

  test('env source; invalid env → invalid naming the variable, not the value', () => {
    const key = generateMasterKey();
    const loaded = loadMasterKey({
      env: { SECRYN_MASTER_KEY: encodeMasterKey(key) },
      filePath: path.join(dir, 'none'),
    });
    expect(loaded).toEqual({ key: loaded.key, source: 'env' });
    expect(hex(loaded.key)).toBe(hex(key));

    const error = loadError({ env: { SECRYN_MASTER_KEY: 'not-a-key' }, filePath: 'x' });
    expect(error.reason).toBe('invalid');
    expect(error.message).toContain('SECRYN_MASTER_KEY');
    expect(error.message).not.toContain('not-a-key');
  });

  test('credential source', () => {
    const key = generateMasterKey();
    const credDir = path.join(dir, 'creds');
    writeKey(path.join(credDir, 'secryn-master-key'), encodeMasterKey(key), 0o400);
    const loaded = loadMasterKey({
      env: { CREDENTIALS_DIRECTORY: credDir },
      filePath: path.join(dir, 'none'),
    });
    expect(loaded.source).toBe('credential');
    expect(loaded.path).toBe(path.join(credDir, 'secryn-master-key'));
    expect(hex(loaded.key)).toBe(hex(key));
  });

  test('precedence: credential > env > file; absent credential file falls through', () => {
    const [credKey, envKey, fileKey] = [
      generateMasterKey(),
      generateMasterKey(),
      generateMasterKey(),
    ];
    const credDir = path.join(dir, 'creds');
    const file = path.join(dir, 'master.key');
    writeKey(path.join(credDir, 'secryn-master-key'), encodeMasterKey(credKey));
    writeKey(file, encodeMasterKey(fileKey));
    const env = { CREDENTIALS_DIRECTORY: credDir, SECRYN_MASTER_KEY: encodeMasterKey(envKey) };

    expect(hex(loadMasterKey({ env, filePath: file }).key)).toBe(hex(credKey));

    fs.rmSync(path.join(credDir, 'secryn-master-key'));
    const fromEnv = loadMasterKey({ env, filePath: file });
    expect(fromEnv.source).toBe('env');
    expect(hex(fromEnv.key)).toBe(hex(envKey));

    const fromFile = loadMasterKey({ env: { ...env, SECRYN_MASTER_KEY: '' }, filePath: file });
    expect(fromFile.source).toBe('file');
    expect(hex(fromFile.key)).toBe(hex(fileKey));
  });

  test('an invalid higher-precedence source fails instead of silently falling through', () => {
    const file = path.join(dir, 'master.key');
    writeKey(file, encodeMasterKey(generateMasterKey()));
    const error = loadError({ env: { SECRYN_MASTER_KEY: 'garbage' }, filePath: file });
    expect(error.reason).toBe('invalid');
  });
});

describe('writeNewMasterKeyFile', () => {
  test('creates 0700 parent and 0600 file that loads back', () => {
    const file = path.join(dir, 'data', 'master.key');
    const key = generateMasterKey();
    writeNewMasterKeyFile(file, key);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8')).toBe(encodeMasterKey(key) + '\n');
    expect(hex(loadMasterKey({ env: {}, filePath: file }).key)).toBe(hex(key));
  });

  test('keeps an existing parent as it is and works under a loose umask', () => {
    const previous = process.umask(0);
    try {
      const file = path.join(dir, 'master.key');
      writeNewMasterKeyFile(file, generateMasterKey());
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      const nested = path.join(dir, 'a', 'b', 'master.key');
      writeNewMasterKeyFile(nested, generateMasterKey());
      expect(fs.statSync(path.dirname(nested)).mode & 0o777).toBe(0o700);
    } finally {
      process.umask(previous);
    }
  });

  test('refuses to overwrite an existing file', () => {
    const file = path.join(dir, 'master.key');
    const first = generateMasterKey();
    writeNewMasterKeyFile(file, first);
    let caught: unknown;
    try {
      writeNewMasterKeyFile(file, generateMasterKey());
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(MasterKeyError);
    expect((caught as MasterKeyError).reason).toBe('exists');
    expect(hex(loadMasterKey({ env: {}, filePath: file }).key)).toBe(hex(first));
  });
});
