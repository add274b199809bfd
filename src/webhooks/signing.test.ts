import { describe, expect, test } from 'bun:test';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { generateWebhookSecret, signPayload } from './signing.ts';

const body = JSON.stringify({
  id: 'evt_01h455vb4pex5vsknk084sn02q',
  type: 'resource.created',
  created_at: '2024-01-15T10:30:00Z',
  data: { object: { id: 'res_01h455vb4pex5vsknk084sn02r', name: 'db-password' } },
});
const msgId = 'evt_01h455vb4pex5vsknk084sn02q';
// The verifier allows five minutes of clock skew, so sign with the real current time.
const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('generateWebhookSecret', () => {
  test('is whsec_ + base64 of 32 random bytes, and unique', () => {
    const secrets = new Set(Array.from({ length: 100 }, generateWebhookSecret));
    expect(secrets.size).toBe(100);
    for (const secret of secrets) {
      expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32);
      // The reference library accepts it as a key.
      expect(() => new Webhook(secret)).not.toThrow();
    }
  });
});

describe('signPayload', () => {
  test('produces the three Standard Webhooks headers, verifiable by the reference library', () => {
    const secret = generateWebhookSecret();
    const timestampSeconds = nowSeconds();
    const headers = signPayload({ secrets: [secret], msgId, timestampSeconds, body });
    expect(Object.keys(headers).sort()).toEqual([
      'webhook-id',
      'webhook-signature',
      'webhook-timestamp',
    ]);
    expect(headers['webhook-id']).toBe(msgId);
    expect(headers['webhook-timestamp']).toBe(String(timestampSeconds));
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  test('during a rotation, each of the old and new secrets verifies on its own', () => {
    const current = generateWebhookSecret();
    const previous = generateWebhookSecret();
    const headers = signPayload({
      secrets: [current, previous],
      msgId,
      timestampSeconds: nowSeconds(),
      body,
    });
    const entries = headers['webhook-signature'].split(' ');
    expect(entries).toHaveLength(2);
    for (const entry of entries) expect(entry).toStartWith('v1,');
    expect(entries[0]).not.toBe(entries[1]);
    expect(new Webhook(current).verify(body, headers)).toEqual(JSON.parse(body));
    expect(new Webhook(previous).verify(body, headers)).toEqual(JSON.parse(body));
  });

  test('a wrong secret is rejected', () => {
    const headers = signPayload({
      secrets: [generateWebhookSecret()],
      msgId,
      timestampSeconds: nowSeconds(),
      body,
    });
    expect(() => new Webhook(generateWebhookSecret()).verify(body, headers)).toThrow(
      WebhookVerificationError,
    );
  });

  test('a tampered body, id or timestamp is rejected', () => {
    const secret = generateWebhookSecret();
    const timestampSeconds = nowSeconds();
    const headers = signPayload({ secrets: [secret], msgId, timestampSeconds, body });
    const verifier = new Webhook(secret);
    expect(() => verifier.verify(body.replace('db-password', 'db-passwore'), headers)).toThrow(
      WebhookVerificationError,
    );
    expect(() => verifier.verify(`${body} `, headers)).toThrow(WebhookVerificationError);
    expect(() => verifier.verify(body, { ...headers, 'webhook-id': 'evt_other' })).toThrow(
      WebhookVerificationError,
    );
    expect(() =>
      verifier.verify(body, { ...headers, 'webhook-timestamp': String(timestampSeconds - 1) }),
    ).toThrow(WebhookVerificationError);
  });

  test('is deterministic for the same inputs and matches the reference signer', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const timestampSeconds = 1_614_265_330;
    const a = signPayload({
      secrets: [secret],
      msgId: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      timestampSeconds,
      body: '{"test": 2432232314}',
    });
    const b = signPayload({
      secrets: [secret],
      msgId: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      timestampSeconds,
      body: '{"test": 2432232314}',
    });
    expect(a).toEqual(b);
    // Known-answer vector from the Standard Webhooks specification's examples.
    expect(a['webhook-signature']).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  test.each([
    [{ secrets: [] as string[] }, 'at least one webhook secret'],
    [{ secrets: ['not-a-secret'] }, 'secret #0'],
    [{ secrets: [generateWebhookSecret(), 'whsec_c2hvcnQ='] }, 'secret #1'], // 5 bytes
    [{ secrets: [`whsec_${Buffer.alloc(65).toString('base64')}`] }, 'secret #0'],
    [{ secrets: ['whsec_!!!!'] }, 'secret #0'],
    [{ msgId: '' }, 'message id'],
    [{ timestampSeconds: 1.5 }, 'timestamp'],
    [{ timestampSeconds: -1 }, 'timestamp'],
  ])('throws on invalid input %#', (override, message) => {
    const valid = {
      secrets: [generateWebhookSecret()],
      msgId,
      timestampSeconds: nowSeconds(),
      body,
    };
    expect(() => signPayload({ ...valid, ...override })).toThrow(message);
  });

  test('error messages never contain the secret', () => {
    const badSecret = 'whsec_c2hvcnQ=';
    try {
      signPayload({ secrets: [badSecret], msgId, timestampSeconds: nowSeconds(), body });
      throw new Error('expected signPayload to throw');
    } catch (error) {
      expect(String(error)).not.toContain('c2hvcnQ');
    }
  });
});
