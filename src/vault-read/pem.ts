/** PEM downloads of the vault read API: the media type, the file name header, the OpenAPI answer. */

/** Media type of the download routes. */
export const PEM_MEDIA_TYPE = 'application/x-pem-file';

/** OpenAPI responses of a download route. */
export function pemResponses(description: string) {
  return {
    200: { description, content: { [PEM_MEDIA_TYPE]: { schema: { type: 'string' as const } } } },
  };
}

/**
 * `Content-Disposition: attachment` with an ASCII fallback name and the exact UTF-8 name
 * (RFC 6266 / RFC 8187), so that no header injection or encoding issue is possible.
 */
export function attachment(filename: string): string {
  const ascii = filename.replace(/[^A-Za-z0-9._-]/g, '_');
  const encoded = encodeURIComponent(filename).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
