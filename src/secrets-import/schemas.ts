/**
 * The TypeBox schemas of `POST /v1/vaults/:id/secrets/import`: the single source of truth for
 * its validation, its OpenAPI entry and its TypeScript types.
 */
import { t } from 'elysia';
import { ContentType } from '../resources/schemas.ts';
import { IdParam, strictObject } from '../http/fields.ts';
import { RESOURCE_NAME_PATTERN, RESOURCE_NAME_RULE } from '../http/names.ts';

/** Most secrets one import may carry: one transaction, one response, bounded work. */
export const MAX_IMPORT_SECRETS = 1000;

/**
 * A secret name, validated by the same pattern as single creation; the handler normalises it to
 * NFC with {@link import('../http/names.ts').assertResourceName}, naming `secrets.N.name`.
 */
const ImportName = t.String({
  minLength: 1,
  pattern: RESOURCE_NAME_PATTERN,
  description: 'As a secret name: 1–255 printable Unicode characters, no "/". Stored in NFC.',
  error: RESOURCE_NAME_RULE,
});

export const ImportEntry = strictObject({
  name: ImportName,
  value: t.String({ description: 'The value (UTF-8 text)', error: 'Must be a string' }),
  content_type: t.Optional(ContentType),
});

export const ImportBody = strictObject({
  secrets: t.Array(ImportEntry, {
    maxItems: MAX_IMPORT_SECRETS,
    error: `Must be a list of at most ${MAX_IMPORT_SECRETS} secrets`,
  }),
});

export type ImportInput = (typeof ImportBody)['static'];

export const ImportParams = t.Object({ id: IdParam });

const Names = t.Array(t.String(), { description: 'Secret names, in request order' });

export const ImportResult = t.Object({
  created: Names,
  updated: Names,
  unchanged: t.Array(t.String(), {
    description:
      'Secrets whose value (and content type) were already those sent. Only for keys with ' +
      'resources:reveal: for other keys every value sent makes a new version.',
  }),
});

export type ImportResultObject = (typeof ImportResult)['static'];
