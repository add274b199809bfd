/** Where the console's assets are served: shared by the plugin and the asset module it loads lazily. */
export const CONSOLE_ASSETS_PREFIX = '/console/assets';
