/**
 * How the SSH layer asks "may this client in?". Providers (webhook, authorized keys, token,
 * SSH CA) implement `AuthProvider`; `createAuthChain` (chain.ts) tries them in order.
 *
 * Public keys: the SSH layer verifies the userauth signature itself (ssh2 does not) before it
 * treats a `publickey` credential as proven; providers only decide whether the key is acceptable.
 * The same provider call answers the signature-less "would you accept this key?" probe.
 */
import type { MetadataMap } from '../backend/backend.js';

/**
 * `none` is offered to providers that authenticate by the login name alone (the CI-debug token
 * provider: `ssh <token>@gateway`); every other provider refuses it.
 */
export type AuthMethod = 'password' | 'publickey' | 'keyboard-interactive' | 'none';

export interface PublicKeyCredential {
  readonly method: 'publickey';
  /** Algorithm name from the wire, e.g. "ssh-ed25519" or "ssh-ed25519-cert-v01@openssh.com". */
  readonly algorithm: string;
  /** The key blob as sent (SSH wire format). */
  readonly blob: Buffer;
  /** authorized_keys form, e.g. "ssh-ed25519 AAAA..." (what ContainerSSH's /pubkey receives). */
  readonly authorizedKey: string;
  /** "SHA256:..." as ssh-keygen prints it; safe to log. */
  readonly fingerprint: string;
}

export interface PasswordCredential {
  readonly method: 'password';
  /** Never log, record or forward except to the configured auth webhook. */
  readonly password: string;
}

/** One question of a keyboard-interactive round (RFC 4256 §3.2). */
export interface KeyboardInteractivePrompt {
  readonly prompt: string;
  /** false = the client hides what is typed (passwords, codes). */
  readonly echo: boolean;
}

/** One SSH_MSG_USERAUTH_INFO_REQUEST (RFC 4256 §3.2). */
export interface KeyboardInteractiveChallenge {
  /** Shown above the prompts (OpenSSH prints it on stderr). */
  readonly instruction?: string;
  readonly prompts: readonly KeyboardInteractivePrompt[];
}

/**
 * Keyboard-interactive (RFC 4256) is a conversation, so the credential is a way to ask rather
 * than a value: the provider decides what to ask, and may ask several times.
 */
export interface KeyboardInteractiveCredential {
  readonly method: 'keyboard-interactive';
  /**
   * Sends one info request and resolves with the client's answers, one per prompt (a client may
   * send another count: check it). Rejects when the client abandons the exchange (starts another
   * method) or leaves. The answers are secrets: never log, record or forward them except to the
   * provider's own backend.
   */
  readonly challenge: (challenge: KeyboardInteractiveChallenge) => Promise<readonly string[]>;
}

export interface NoneCredential {
  readonly method: 'none';
}

export type Credential = PublicKeyCredential | PasswordCredential | KeyboardInteractiveCredential | NoneCredential;

/** Facts about the connection that every provider and webhook receives. */
export interface AuthRequest {
  readonly connectionId: string;
  readonly username: string;
  readonly remoteAddress: string;
  readonly clientVersion: string;
  /** What earlier steps collected so far (0.6 key-by-key merge). */
  readonly metadata: MetadataMap;
  readonly environment: MetadataMap;
  readonly files: MetadataMap;
}

export type AuthOutcome =
  /** Credential accepted. */
  | 'accept'
  /** Clean "no": the client may try its next method. */
  | 'reject'
  /** The provider could not decide (webhook down, garbage answer): fail closed, log as error. */
  | 'error';

export interface AuthDecision {
  readonly outcome: AuthOutcome;
  /** Operator-facing reason code for the log line (AirlockError code or provider-specific). */
  readonly reason?: string;
  readonly authenticatedUsername?: string;
  readonly metadata?: MetadataMap;
  readonly environment?: MetadataMap;
  /** Path → base64 content, ContainerSSH `files` shape. */
  readonly files?: MetadataMap;
  /** Hard end of the connection (e.g. token expiry). */
  readonly deadline?: Date;
  /**
   * Workload image chosen by the credential (a CI-debug session runs the failed build's image);
   * overrides the configured image. Only the token provider sets it.
   */
  readonly image?: string;
  /**
   * One line shown to the client (auth banner) when the login is refused, e.g. "the token has
   * expired". Never secrets; absent = a bare "Permission denied".
   */
  readonly userMessage?: string;
  /**
   * Gives back what an `accept` holds (a CI session's connection slot). The SSH layer calls it
   * once when the connection ends, however it ends. Must not throw.
   */
  readonly release?: () => Promise<void>;
  /** Limits the credential puts on its sessions (SSH certificate options); absent = none. */
  readonly session?: SessionRestrictions;
}

/** What a credential allows inside the session (OpenSSH certificate critical options/extensions). */
export interface SessionRestrictions {
  /** Runs instead of the requested command, shell or subsystem (`force-command`). */
  readonly forceCommand?: string;
  /** false = pty requests are refused (`permit-pty` absent from the certificate). */
  readonly permitPty?: boolean;
  /** false = port forwarding is refused (`permit-port-forwarding` absent). */
  readonly permitPortForwarding?: boolean;
}

export interface AuthProvider {
  readonly name: string;
  supports(method: AuthMethod): boolean;
  authenticate(credential: Credential, request: AuthRequest, signal: AbortSignal): Promise<AuthDecision>;
}
