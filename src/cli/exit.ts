/**
 * Exit codes of the `secryn` command. Scripts and systemd rely on them, so they never change
 * meaning. Where sysexits.h has a fitting code it is used.
 */
export const ExitCode = {
  OK: 0,
  /** A runtime failure the message explains. */
  FAILURE: 1,
  /** Unknown command, unknown or malformed flag. */
  USAGE: 2,
  /** There is no instance here yet (`secryn init` has not run). */
  NOT_INITIALIZED: 3,
  /** `init` found an instance (database or master key file) already there and left it alone. */
  ALREADY_INITIALIZED: 4,
  /** No master key: no systemd credential, no SECRYN_MASTER_KEY, no key file. */
  MASTER_KEY_MISSING: 10,
  /** The master key file is accessible to group or others (fix: chmod 600). */
  MASTER_KEY_PERMISSIONS: 11,
  /** The master key is truncated or not base64 of 32 bytes. */
  MASTER_KEY_INVALID: 12,
  /** The master key is not the one the instance's keyring is sealed with. */
  MASTER_KEY_MISMATCH: 13,
  /** The keyring in the database is absent or altered (the master key itself is right). */
  KEYRING_UNUSABLE: 14,
  /**
   * The master key file exists but this process cannot read it (EACCES: typically a maintenance
   * command run as the service user, while the key file is root's), or it is not a regular file.
   */
  MASTER_KEY_UNREADABLE: 15,
  // Client commands (secret, project, vault, env, run, login, whoami): the server's answer.
  /** No server or no token: neither --url/SECRYN_URL nor a profile, or no SECRYN_TOKEN/profile. */
  NOT_LOGGED_IN: 20,
  /** 401: the token is unknown, expired or revoked. */
  UNAUTHORIZED: 21,
  /** 403: the key lacks the permission. */
  FORBIDDEN: 22,
  /** 404 (or 410): no such object, or not within the key's reach. */
  NOT_FOUND: 23,
  /** 409: the object exists already or changed meanwhile. */
  CONFLICT: 24,
  /** 400/413/415: the server refused the request as invalid (the message names the field). */
  REJECTED: 25,
  /** 429 or 503 still after the bounded retries, or a 5xx: try again later. */
  SERVER_UNAVAILABLE: 26,
  /** The server's TLS certificate is not trusted (wrong or missing --ca-file / SECRYN_CACERT). */
  TLS_UNTRUSTED: 27,
  /** `run --fallback`: the server was unreachable and the fallback copy is missing, expired or unreadable. */
  FALLBACK_UNUSABLE: 28,
  /**
   * sysexits EX_DATAERR: the data failed its integrity check (`audit verify`: the chain is
   * broken; `restore`: the backup's keyring, API key MACs or audit chain do not verify, and
   * nothing was replaced).
   */
  INTEGRITY: 65,
  /**
   * sysexits EX_TEMPFAIL: the database stayed locked by another process for longer than
   * `storage.busy_timeout_ms`; the same command can simply be run again.
   */
  DATABASE_BUSY: 75,
  /** sysexits EX_UNAVAILABLE: the server cannot be reached (refused, DNS, timeout). */
  UNREACHABLE: 69,
  /** sysexits EX_CONFIG: the configuration file is unusable. */
  CONFIG: 78,
} as const;

/** An expected failure of a command: printed as one line, then the process exits with `exitCode`. */
export class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.FAILURE,
    /** For `--json` errors: a stable code (an API error code); default the exit status's name. */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'CliFailure';
  }
}
