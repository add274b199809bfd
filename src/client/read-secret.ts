/**
 * Reading a secret typed by a person (a token at `secryn login`) without echoing it, or the
 * whole of stdin when it is not a terminal (a pipe, a file, a CI step).
 */

/** All of stdin as bytes. */
export async function readStdin(): Promise<Uint8Array> {
  return new Uint8Array(await new Response(Bun.stdin.stream()).arrayBuffer());
}

/** One line typed at the terminal with echo off; the prompt goes to stderr. */
export async function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = '';
      const onData = (chunk: Buffer) => {
        for (const char of chunk.toString('utf8')) {
          if (char === '\r' || char === '\n' || char === '\u0004') {
            stdin.off('data', onData);
            resolve(typed);
            return;
          }
          if (char === '\u0003') {
            stdin.off('data', onData);
            reject(new Error('interrupted'));
            return;
          }
          if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
          else typed += char;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}
