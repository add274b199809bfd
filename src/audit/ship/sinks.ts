/**
 * Where shipped audit entries go: RFC 5424 syslog over TCP or TLS (RFC 6587 octet counting),
 * or a JSON-lines file. A sink's `send` resolves only once the batch has left this process
 * (written to the socket and flushed to the kernel, or appended and fdatasync'ed), which is
 * when the shipper may advance its cursor.
 */
import { closeSync, constants, fdatasyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { hostname } from 'node:os';
import type { ShipRow } from './store.ts';

/** The cursor names of the two sinks (audit_ship_cursor.sink); retention reads them too. */
export const SYSLOG_SINK = 'syslog';
export const FILE_SINK = 'file';

export type Sink = {
  /** `syslog` or `file`: the cursor's name. */
  readonly name: string;
  /** Where to, for logs (no credentials are ever in it). */
  readonly target: string;
  /**
   * Entries to send again after the connection failed: TCP's "flushed" means taken by this
   * kernel, and what was still in its buffers when the peer went away is lost without notice
   * (syslog has no acknowledgements). 0 for the file, whose fdatasync is durable.
   */
  readonly resendOnFailure: number;
  send(entries: ShipEntry[]): Promise<void>;
  /** Drops the connection or file handle; the next send reopens it. */
  close(): void;
};

/** One entry as shipped: every stored field, the chain format in force at its seq, and hashes. */
export type ShipEntry = ShipRow & { chain: 'secryn.audit.v1' | 'secryn.audit.v2' };

/** The JSON of one entry: the same object in the file and in the syslog message. */
export function entryJson(entry: ShipEntry): string {
  return JSON.stringify(entry);
}

/** How long connecting may take before the attempt counts as failed. */
const CONNECT_TIMEOUT_MS = 10_000;
/** How long a flush may wait on a receiver that does not read (then the connection is dropped). */
const WRITE_TIMEOUT_MS = 30_000;

/** facility 13 (log audit), severity 6 (informational) or 4 (warning) for denied/error. */
function priority(outcome: string): number {
  return 13 * 8 + (outcome === 'success' ? 6 : 4);
}

/** PRINTUSASCII without spaces, at most `max` characters, or the nil value. */
function header(value: string, max: number): string {
  const clean = value.replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return clean === '' ? '-' : clean;
}

/**
 * One RFC 5424 message, framed by octet counting (RFC 6587 §3.4.1): `LEN SP MSG`. MSGID is the
 * action; the message is the entry's JSON (UTF-8, with the BOM RFC 5424 asks for).
 */
export function syslogFrame(entry: ShipEntry, host = hostname()): Buffer {
  const message =
    `<${priority(entry.outcome)}>1 ${new Date(entry.at).toISOString()} ${header(host, 255)} ` +
    `secryn ${process.pid} ${header(entry.action, 32)} - \uFEFF${entryJson(entry)}`;
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

/** `tcp://host:port` or `tls://host:port` (validated by the config schema). */
export function syslogSink(url: string, caFile?: string): Sink {
  const parsed = /^(tcp|tls):\/\/(.+):(\d+)$/.exec(url);
  if (!parsed) throw new Error(`audit.ship.syslog: ${url.slice(0, 80)} is not tcp:// or tls://`);
  const [, scheme, rawHost, port] = parsed;
  const host = rawHost!.replace(/^\[(.*)\]$/, '$1');
  const ca = caFile ? readFileSync(caFile, 'utf8') : undefined;
  let socket: Socket | null = null;
  let connecting: Promise<Socket> | null = null;

  const open = (): Promise<Socket> =>
    new Promise<Socket>((resolve, reject) => {
      const options = { host, port: Number(port) };
      const sock =
        scheme === 'tls'
          ? tlsConnect({ ...options, servername: host, ca, minVersion: 'TLSv1.2' })
          : netConnect(options);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connecting to ${url} timed out`));
      }, CONNECT_TIMEOUT_MS);
      sock.once(scheme === 'tls' ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        sock.setNoDelay(true);
        sock.setKeepAlive(true, 30_000);
        resolve(sock);
      });
      sock.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      // A receiver never sends anything back; reading keeps a closed connection noticed.
      sock.on('data', () => {});
      sock.on('close', () => {
        if (socket === sock) socket = null;
      });
    });

  return {
    name: SYSLOG_SINK,
    target: url,
    resendOnFailure: 2_000,
    async send(entries) {
      if (!socket || socket.destroyed) {
        connecting ??= open().finally(() => (connecting = null));
        socket = await connecting;
      }
      const sock = socket;
      const data = Buffer.concat(entries.map((entry) => syslogFrame(entry)));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          sock.destroy();
          reject(new Error(`${url} did not take the batch within ${WRITE_TIMEOUT_MS} ms`));
        }, WRITE_TIMEOUT_MS);
        const settle = (error?: Error | null) => {
          clearTimeout(timer);
          sock.off('error', settle);
          sock.off('close', closed);
          if (error) reject(error);
          else resolve();
        };
        const closed = () => settle(new Error(`${url} closed the connection`));
        sock.once('error', settle);
        sock.once('close', closed);
        // The callback runs once the data is handed to the kernel: only then is it "taken".
        sock.write(data, settle);
      });
    },
    close() {
      socket?.destroy();
      socket = null;
    },
  };
}

/** Appends one JSON object per line to `path` (created 0600), fdatasync'ed per batch. */
export function fileSink(path: string): Sink {
  let fd: number | null = null;
  return {
    name: FILE_SINK,
    target: path,
    resendOnFailure: 0,
    async send(entries) {
      fd ??= openSync(
        path,
        constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
        0o600,
      );
      const data = Buffer.from(entries.map((entry) => `${entryJson(entry)}\n`).join(''), 'utf8');
      try {
        let offset = 0;
        while (offset < data.length) offset += writeSync(fd, data, offset);
        fdatasyncSync(fd);
      } catch (error) {
        this.close();
        throw error;
      }
    },
    close() {
      if (fd !== null) closeSync(fd);
      fd = null;
    },
  };
}
