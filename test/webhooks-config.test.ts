/**
 * The webhook settings at config load: allowed_cidrs is validated with the outbound guard's own
 * parser, so a typo stops the server at start (exit 78 naming the key) instead of silently
 * allowing nothing.
 */
import { describe, expect, test } from 'bun:test';
import { ConfigError, validateConfig } from '../src/config/load.ts';
import { runCli, tempDir, writeConfig } from './harness.ts';

describe('[webhooks] configuration', () => {
  test('defaults', () => {
    const { webhooks } = validateConfig({});
    expect(webhooks).toMatchObject({
      concurrency: 8,
      per_endpoint_concurrency: 2,
      poll_interval_ms: 1000,
      allowed_cidrs: [],
      allowed_hosts: [],
    });
  });

  test('bad allowed_cidrs entries are refused, naming the key and the entry', () => {
    const cases: [string[], string][] = [
      [
        ['10.0.0.0/8', '10.0.0.1/8'],
        'webhooks.allowed_cidrs.1: "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?',
      ],
      [['not-a-cidr'], 'webhooks.allowed_cidrs.0: "not-a-cidr" is not an IP address or CIDR'],
      [['10.0.0.0/33'], 'webhooks.allowed_cidrs.0: prefix length in "10.0.0.0/33" must be 0..32'],
    ];
    for (const [cidrs, line] of cases) {
      let error: unknown;
      try {
        validateConfig({ webhooks: { allowed_cidrs: cidrs } });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).lines).toEqual([line]);
    }
    expect(
      validateConfig({ webhooks: { allowed_cidrs: ['127.0.0.0/8', 'fd12::/48', '10.1.2.3'] } })
        .webhooks.allowed_cidrs,
    ).toHaveLength(3);
  });

  test('secryn serve exits 78 on a bad allowed_cidrs entry', async () => {
    using dir = tempDir();
    const config = writeConfig(dir.path, '[webhooks]\nallowed_cidrs = ["192.168.1.1/16"]\n');
    const result = await runCli(['serve', '--config', config]);
    expect(result.exitCode).toBe(78);
    expect(result.stderr).toContain('webhooks.allowed_cidrs.0');
  });
});
