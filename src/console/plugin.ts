/**
 * The web console's routes: `GET /` and `GET /console/assets/<tag>/<name>`, hidden from the
 * OpenAPI document. The page and its bundle live in ./assets.ts, imported on the first console
 * request, so that `secryn serve` run from source starts as fast as before (the bundle is built
 * by a macro when that module loads; in the compiled executable it is already embedded).
 */
import { Elysia } from 'elysia';
import { errorBody } from '../http/error-funnel.ts';

/** Every console asset lives below this prefix. */
export { CONSOLE_ASSETS_PREFIX } from './paths.ts';
import { CONSOLE_ASSETS_PREFIX } from './paths.ts';

let loaded: Promise<typeof import('./assets.ts')> | undefined;
/** The console's page and assets, loaded once. */
export const consoleAssets = () => (loaded ??= import('./assets.ts'));

/** The console routes. */
export function consolePlugin() {
  return new Elysia({ name: 'console' })
    .get('/', async () => (await consoleAssets()).consoleResponse(null, null, '')!, {
      detail: { hide: true },
    })
    .get(
      `${CONSOLE_ASSETS_PREFIX}/:tag/:name`,
      async ({ params, request }) => {
        const { consoleResponse } = await consoleAssets();
        const response = consoleResponse(
          params.tag,
          params.name,
          request.headers.get('accept-encoding') ?? '',
        );
        // An old tag (a page cached across an upgrade) or a made-up name.
        return (
          response ??
          Response.json(errorBody('NOT_FOUND', 'Asset not found'), {
            status: 404,
            headers: { 'x-content-type-options': 'nosniff' },
          })
        );
      },
      { detail: { hide: true } },
    );
}
