import { describe, expect, test } from 'bun:test';
import { InvalidRequestError } from '../errors.ts';
import { parseTimestamp, timestampMs } from './schemas.ts';

describe('timestampMs', () => {
  test('RFC 3339 timestamps, with offsets and fractions', () => {
    expect(timestampMs('2030-01-15T10:30:00Z')).toBe(Date.UTC(2030, 0, 15, 10, 30));
    expect(timestampMs('2030-01-15T10:30:00.250+02:00')).toBe(Date.UTC(2030, 0, 15, 8, 30, 0, 250));
    expect(timestampMs('2030-01-15t10:30:00z')).toBe(Date.UTC(2030, 0, 15, 10, 30));
    expect(timestampMs('2030-01-15 10:30Z')).toBe(Date.UTC(2030, 0, 15, 10, 30));
    expect(timestampMs('2028-02-29T00:00:00Z')).toBe(Date.UTC(2028, 1, 29)); // leap year
  });

  test('dates alone only when asked for, as midnight UTC', () => {
    expect(timestampMs('2030-01-15')).toBeUndefined();
    expect(timestampMs('2030-01-15', { dateOnly: true })).toBe(Date.UTC(2030, 0, 15));
  });

  test('impossible calendar values are refused, not rolled over into another day', () => {
    for (const text of [
      '2027-02-29T00:00:00Z',
      '2027-02-30T00:00:00Z',
      '2027-04-31T00:00:00Z',
      '2027-13-01T00:00:00Z',
      '2027-00-10T00:00:00Z',
      '2027-01-00T00:00:00Z',
      '2027-01-10T24:00:00Z',
      '2027-01-10T23:60:00Z',
      '2027-01-10T23:59:60Z',
      '2027-01-10T10:00:00+24:00',
      '2027-01-10T10:00:00+05:60',
    ]) {
      expect(timestampMs(text)).toBeUndefined();
    }
    expect(timestampMs('2027-02-30', { dateOnly: true })).toBeUndefined();
  });

  test('anything else is refused', () => {
    for (const text of ['', 'now', '1700000000', '2030-1-5T10:30:00Z', '2030-01-15T10:30:00']) {
      expect(timestampMs(text, { dateOnly: true })).toBeUndefined();
    }
  });

  test('parseTimestamp names the field', () => {
    let error: unknown;
    try {
      parseTimestamp('2027-02-30T00:00:00Z', 'expires_at');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect((error as InvalidRequestError).details).toEqual({
      field: 'expires_at',
      reason: 'Must be a valid date and time',
    });
  });
});
