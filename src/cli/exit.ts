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
  /** `init` found an instance already there and left it alone. */
  ALREADY_INITIALIZED: 4,
  /** sysexits EX_CONFIG: the configuration file is unusable. */
  CONFIG: 78,
} as const;

/** An expected failure of a command: printed as one line, then the process exits with `exitCode`. */
export class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.FAILURE,
  ) {
    super(message);
    this.name = 'CliFailure';
  }
}
