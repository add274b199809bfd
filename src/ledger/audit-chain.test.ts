import { describe, expect, test } from 'bun:test';
import { createHash } from 'node:crypto';
import { canonicalEncoding, entryHash, GENESIS_HASH, type ChainFields } from './audit-chain.ts';

const sample: ChainFields = {
  seq: 1,
  id: 'aud_01h455vb4pex5vsknk084sn02q',
  at: 1705314600000,
  actorType: 'api_key',
  actorId: 'key_01h455vb4pex5vsknk084sn02q',
  actorName: 'ci, "deploy"',
  action: 'resource.reveal',
  targetType: 'resource',
  targetId: 'res_01h455vb4pex5vsknk084sn02q',
  outcome: 'success',
  status: 200,
  ip: '10.0.0.7',
  userAgent: 'curl/8.5.0',
  requestId: 'req_abc',
  prevHash: GENESIS_HASH,
  details: null,
};

describe('hash chain encoding', () => {
  test('is a JSON array of the format tag and every field in a fixed order (pinned)', () => {
    expect(canonicalEncoding(sample)).toBe(
      '["secryn.audit.v1",1,"aud_01h455vb4pex5vsknk084sn02q",1705314600000,"api_key",' +
        '"key_01h455vb4pex5vsknk084sn02q","ci, \\"deploy\\"","resource.reveal","resource",' +
        '"res_01h455vb4pex5vsknk084sn02q","success",200,"10.0.0.7","curl/8.5.0","req_abc",' +
        `"${GENESIS_HASH}"]`,
    );
    expect(entryHash(sample)).toBe(
      createHash('sha256').update(canonicalEncoding(sample)).digest('hex'),
    );
    // Pinned: changing the encoding would orphan every chain already written.
    expect(entryHash(sample)).toBe(
      '189eee604bb199a7156625001c2f5fb040cc2aed6535dbdb44eb318f43c61beb',
    );
  });

  test('every field, including position and the previous hash, changes the hash', () => {
    const base = entryHash(sample);
    const variants: Partial<ChainFields>[] = [
      { seq: 2 },
      { id: 'aud_other' },
      { at: sample.at + 1 },
      { actorType: 'local_user' },
      { actorId: null },
      { actorName: 'ci' },
      { action: 'resource.read' },
      { targetType: null },
      { targetId: 'res_x' },
      { outcome: 'denied' },
      { status: 403 },
      { status: null },
      { ip: null },
      { userAgent: 'x' },
      { requestId: null },
      { prevHash: 'f'.repeat(64) },
      { details: '{"count":2}' },
    ];
    const hashes = new Set(variants.map((change) => entryHash({ ...sample, ...change })));
    expect(hashes.size).toBe(variants.length);
    expect(hashes.has(base)).toBe(false);
  });

  test('details are appended after prev_hash only when present', () => {
    const details = '{"count":10000}';
    expect(canonicalEncoding({ ...sample, details })).toBe(
      `${canonicalEncoding(sample).slice(0, -1)},${JSON.stringify(details)}]`,
    );
    expect(entryHash({ ...sample, details: '{"count":10001}' })).not.toBe(
      entryHash({ ...sample, details }),
    );
  });

  test('no two field splits encode alike (separators are escaped)', () => {
    const a = entryHash({ ...sample, actorId: 'a","b', actorName: 'c' });
    const b = entryHash({ ...sample, actorId: 'a', actorName: 'b","c' });
    expect(a).not.toBe(b);
  });
});
