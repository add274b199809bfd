/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com/), computed with the reference
 * `standardwebhooks` package so receivers using any Standard Webhooks library can verify them.
 */
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/** The three headers the Standard Webhooks specification defines, ready to send. */
export type StandardWebhookHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

const SECRET_PREFIX = 'whsec_';
// The specification asks for keys of 24..64 bytes; ours are 32.
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Signs one delivery. `secrets` holds the endpoint's `whsec_…` secrets, current first; during a
 * rotation pass both old and new, and the `webhook-signature` header carries one
 * space-separated `v1,<base64 HMAC-SHA256>` entry per secret, so receivers on either secret
 * accept it. `msgId` must stay the same across retries of one message (receivers deduplicate on
 * it); `timestampSeconds` must be the time of THIS attempt (receivers reject timestamps more than
 * five minutes off), so re-sign on every retry. `body` is signed exactly as given and must be
 * sent byte for byte.
 *
 * Throws on an empty secret list, a malformed or wrongly sized secret, an empty `msgId`, or a
 * non-integer timestamp — all programming or data errors; the message never contains a secret.
 */
export function signPayload(opts: {
  secrets: string[];
  msgId: string;
  timestampSeconds: number;
  body: string;
}): StandardWebhookHeaders {
  const { secrets, msgId, timestampSeconds, body } = opts;
  if (secrets.length === 0) throw new Error('at least one webhook secret is required');
  if (msgId === '') throw new Error('webhook message id must not be empty');
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) {
    throw new Error('webhook timestamp must be a non-negative integer number of seconds');
  }
  const timestamp = new Date(timestampSeconds * 1000);
  const signatures = secrets.map((secret, index) => {
    assertWebhookSecret(secret, index);
    return new Webhook(secret).sign(msgId, timestamp, body);
  });
  return {
    'webhook-id': msgId,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': signatures.join(' '),
  };
}

/**
 * Generates a new endpoint signing secret: `whsec_` followed by the standard base64 of 32
 * random bytes from the OS CSPRNG, the form Standard Webhooks libraries accept.
 */
export function generateWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

function assertWebhookSecret(secret: string, index: number): void {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : '';
  const bytes = BASE64.test(encoded) ? Buffer.from(encoded, 'base64').length : 0;
  if (bytes < MIN_SECRET_BYTES || bytes > MAX_SECRET_BYTES) {
    throw new Error(
      `webhook secret #${index} must be "whsec_" + base64 of ${MIN_SECRET_BYTES}..${MAX_SECRET_BYTES} bytes`,
    );
  }
}
