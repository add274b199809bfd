/**
 * Where client commands read a value from: `--from-file PATH`, or stdin (a hidden prompt on a
 * terminal). Never from an argument, which `ps` and shell history would show. Values are taken
 * byte for byte (a trailing newline included): use `printf %s` rather than `echo` to avoid one.
 */
import { readFileSync } from 'node:fs';
import { promptHidden, readStdin } from '../client/read-secret.ts';
import { CliFailure, ExitCode } from './exit.ts';

/** The value as UTF-8 text; refuses bytes that are not UTF-8 (the API stores text). */
export async function readValue(fromFile: string | undefined, what: string): Promise<string> {
  let bytes: Uint8Array;
  if (fromFile) {
    try {
      bytes = readFileSync(fromFile);
    } catch (error) {
      throw new CliFailure(
        `cannot read ${fromFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
        ExitCode.FAILURE,
      );
    }
  } else if (process.stdin.isTTY) {
    return promptHidden(`Value of ${what} (input hidden): `);
  } else {
    bytes = await readStdin();
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new CliFailure(`the value of ${what} is not UTF-8 text`, ExitCode.USAGE);
  }
}
