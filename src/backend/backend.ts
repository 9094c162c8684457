/**
 * The seam between the SSH layer and whatever runs the user's programs (Docker, Podman,
 * Kubernetes, an upstream SSH server). ssh/ only knows these interfaces.
 *
 * Lifecycle: `Backend.openConnection` is called once per authenticated SSH connection and
 * returns a `BackendConnection`; every session channel calls `startProcess` on it. Whether that
 * means one container per connection (exec per channel) or one container per channel is the
 * backend's business (`docker.execution.mode`). `BackendConnection.close` removes everything the
 * connection created and must be safe to call more than once and concurrently with startProcess.
 */
import type { Duplex, Readable, Writable } from 'node:stream';

/** A value handed over by auth/config webhooks; `sensitive` values never reach logs or labels. */
export interface MetadataValue {
  readonly value: string;
  readonly sensitive: boolean;
}
export type MetadataMap = Readonly<Record<string, MetadataValue>>;

/** Everything known about an authenticated connection; flows auth → config → backend → audit. */
export interface ConnectionInfo {
  readonly connectionId: string;
  /** Name as typed by the client. */
  readonly loginUsername: string;
  /** Identity after auth (`authenticatedUsername` or the login name). */
  readonly username: string;
  /** "ip:port" of the client. */
  readonly remoteAddress: string;
  readonly clientVersion: string;
  readonly metadata: MetadataMap;
  readonly environment: MetadataMap;
  /** Path in the workload → file content, written before the user's program starts. */
  readonly files: Readonly<Record<string, { readonly content: Buffer; readonly sensitive: boolean }>>;
  /** Hard end of the connection (token expiry), if any. */
  readonly deadline?: Date;
  /**
   * Image chosen at authentication (a CI-debug session runs the failed build's image); when set
   * it replaces the configured image for this connection's workloads.
   */
  readonly image?: string;
}

export interface PtySpec {
  readonly term: string;
  readonly cols: number;
  readonly rows: number;
}

export interface ProcessRequest {
  /** Which SSH session channel asks (for labels and logs). */
  readonly channelId: number;
  /**
   * What to run: `shell` (the configured shell), `exec` (a command line, run by the workload's
   * shell like OpenSSH does) or `subsystem` (a configured binary, e.g. sftp-server).
   */
  readonly kind: 'shell' | 'exec' | 'subsystem';
  /** Command line for `exec`, subsystem name for `subsystem`; empty for `shell`. */
  readonly command: string;
  /** Environment from `env` requests (already filtered by policy) on top of the connection's. */
  readonly env: Readonly<Record<string, string>>;
  readonly pty?: PtySpec;
}

export type ExitStatus =
  | { readonly kind: 'code'; readonly code: number }
  | { readonly kind: 'signal'; readonly signal: string; readonly coreDumped: boolean };

export interface Process {
  /** Bytes for the program's stdin; `end()` delivers EOF. */
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** Empty (ends at once) when a pty is allocated: the terminal merges both streams. */
  readonly stderr: Readable;
  /** Resolves once the program has ended and stdout/stderr are fully drained. */
  readonly exited: Promise<ExitStatus>;
  resize(cols: number, rows: number): Promise<void>;
  /** Delivers a signal by name without the SIG prefix (RFC 4254 §6.9: "TERM", "INT", ...). */
  signal(name: string): Promise<void>;
  /** Aborts the program (connection gone); resolves when it is gone. Idempotent. */
  kill(): Promise<void>;
}

/**
 * One TCP connection made to a workload listener (`listenTcp`), not yet relayed. The SSH layer
 * asks the client to take it (forwarded-tcpip) and then opens or refuses it.
 */
export interface InboundTcpConnection {
  /** The connecting peer inside the workload (for the forwarded-tcpip originator fields). */
  readonly originAddress: string;
  readonly originPort: number;
  /** The byte stream of the accepted socket (semantics as for `openTcp`). */
  open(signal?: AbortSignal): Promise<Duplex>;
  /** Closes the accepted socket without relaying anything (the SSH client refused it). */
  refuse(): void;
}

export interface TcpListener {
  /** The port bound inside the workload (the one chosen when 0 was asked for). */
  readonly port: number;
  /** Resolves once the listener is gone: closed, or lost with its workload. */
  readonly closed: Promise<void>;
  /** Stops accepting; connections already relayed go on. Idempotent. */
  close(): Promise<void>;
}

export interface BackendConnection {
  startProcess(request: ProcessRequest, signal?: AbortSignal): Promise<Process>;
  /**
   * Port forwarding, optional (absent = the backend cannot forward). A TCP connection to
   * host:port made from inside the workload's network namespace — never from the gateway host.
   * Resolves once the connection is established. The Duplex's readable side ends with the
   * peer's EOF, `end()` sends ours, and it is destroyed (emits `close`) when the connection is
   * over inside the workload; `destroy()` aborts it.
   */
  openTcp?(host: string, port: number, signal?: AbortSignal): Promise<Duplex>;
  /**
   * Listens on `port` (0 = any free port) inside the workload's network namespace and calls
   * `onConnection` for every connection made to it. `bindAddress` is what the client asked
   * for; a backend may narrow it (Docker listens for loopback connections only).
   */
  listenTcp?(bindAddress: string, port: number, onConnection: (connection: InboundTcpConnection) => void, signal?: AbortSignal): Promise<TcpListener>;
  /**
   * Whether the workload has the configured program for a subsystem (e.g. sftp-server). Decided
   * before a session channel is accepted, because ssh2 routes an "sftp" subsystem request either
   * to its SFTP parser or as raw bytes depending on the listeners present when it arrives.
   * Absent = the backend cannot tell; the program is assumed to be there.
   */
  hasSubsystem?(name: string, signal?: AbortSignal): Promise<boolean>;
  /**
   * Gateway-side file access for one session channel, as the session's user with its
   * permissions (the gateway then serves SFTP itself). Absent = the backend has no file API
   * and SFTP needs the program in the workload. The caller closes what it gets.
   */
  openFiles?(request: FilesRequest, signal?: AbortSignal): Promise<WorkloadFiles>;
  /** Removes every container/pod/upstream connection this connection created. Idempotent. */
  close(reason: string): Promise<void>;
}

export interface FilesRequest {
  /** Which SSH session channel asks (labels and logs; a container of its own in session mode). */
  readonly channelId: number;
}

/** Attributes as SFTP carries them (draft-ietf-secsh-filexfer-02 §5); `mode` includes the type bits. */
export interface FileAttributes {
  readonly mode: number;
  readonly size: number;
  readonly uid: number;
  readonly gid: number;
  /** Seconds since the epoch. */
  readonly atime: number;
  readonly mtime: number;
  readonly nlink: number;
  /** Owner and group names where the workload knows them (for `ls -l`), else the numbers. */
  readonly owner: string;
  readonly group: string;
}

export interface DirectoryEntry {
  readonly name: string;
  /** lstat of the entry (a symbolic link is reported as a link). */
  readonly attrs: FileAttributes;
}

/** Changes for setstat; absent fields stay as they are. */
export interface AttributeChanges {
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly size?: number;
  readonly atime?: number;
  readonly mtime?: number;
}

export interface OpenWriteFlags {
  /** Create the file when it does not exist (O_CREAT), with `mode` (umask applies). */
  readonly create: boolean;
  readonly truncate: boolean;
  /** Fail when it exists (O_EXCL). */
  readonly exclusive: boolean;
  /** Every write goes to the end of the file, whatever its offset (O_APPEND). */
  readonly append: boolean;
  readonly mode?: number;
}

/** A file being read sequentially from `offset`; `close()` stops the reader early. */
export interface FileReader {
  readonly stream: Readable;
  /** Attributes at open time. */
  readonly attrs: FileAttributes;
  /** Rejects with a WorkloadFileError if reading failed; resolves when the reader ended. */
  readonly finished: Promise<void>;
  close(): Promise<void>;
}

/** A file being written sequentially from `offset`; `close()` flushes and reports failures. */
export interface FileWriter {
  readonly stream: Writable;
  /** Rejects (with a WorkloadFileError) as soon as the writer fails, e.g. the disk is full. */
  readonly finished: Promise<void>;
  /** Ends the stream and waits until everything is written; rejects like `finished`. */
  close(): Promise<void>;
}

/**
 * A workload's file system as the session's user sees it. All paths are absolute (the caller
 * resolves relative ones against `home`). Failures reject with WorkloadFileError
 * (src/backend/file-error.ts), whose kind maps onto an SFTP status.
 */
export interface WorkloadFiles {
  /** The directory a program starts in (SFTP's "."). */
  readonly home: string;
  stat(path: string): Promise<FileAttributes>;
  lstat(path: string): Promise<FileAttributes>;
  readdir(path: string): Promise<DirectoryEntry[]>;
  openRead(path: string, offset: number): Promise<FileReader>;
  openWrite(path: string, flags: OpenWriteFlags, offset: number): Promise<FileWriter>;
  setstat(path: string, changes: AttributeChanges): Promise<void>;
  mkdir(path: string, mode?: number): Promise<void>;
  rmdir(path: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** Fails when `to` exists (SFTP v3 RENAME). */
  rename(from: string, to: string): Promise<void>;
  readlink(path: string): Promise<string>;
  symlink(target: string, linkPath: string): Promise<void>;
  /** Stops every reader and writer and releases what the files need (a container). Idempotent. */
  close(): Promise<void>;
}

export interface Backend {
  readonly name: string;
  /** Prepares the workload of one authenticated connection (e.g. starts its container). */
  openConnection(info: ConnectionInfo, signal?: AbortSignal): Promise<BackendConnection>;
  /** Readiness probe: resolves when the engine answers. */
  ping(signal?: AbortSignal): Promise<void>;
  /** Releases engine clients; open connections must have been closed first. */
  close(): Promise<void>;
}
