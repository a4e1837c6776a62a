// Exit codes of `zoe-local` (docs/operations.md, "The zoe-local command"), stable for scripts.
export const EXIT = {
  /** Done; for `status`: the service reports no problem. */
  ok: 0,
  /** The service answered, but the operation did not succeed (a flush failed, an unknown event id, a backup that failed its check), or `status` found a problem. */
  failed: 1,
  /** Bad arguments, or `check-config` found the settings invalid. */
  usage: 2,
  /** Nothing answered at the URL: the service is not running, hung, or elsewhere. */
  unreachable: 3,
  /** The service refused the API token (missing or wrong). */
  unauthorized: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  readonly exitCode: ExitCode;
  readonly details: unknown;
  constructor(exitCode: ExitCode, message: string, options: { cause?: unknown; details?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "CliError";
    this.exitCode = exitCode;
    this.details = options.details;
  }
}

export const usage = (message: string) => new CliError(EXIT.usage, `${message} (zoe-local --help)`);
