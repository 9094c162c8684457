import type { AuthDecision, AuthMethod, AuthProvider, AuthRequest, Credential } from './provider.js';

/**
 * Tries providers in order for a method. The first `accept` wins; an `error` stops the chain and
 * fails closed (a down webhook must not fall through to a weaker provider); `reject` moves on.
 */
export function createAuthChain(providers: readonly AuthProvider[]): AuthProvider {
  return {
    name: 'chain',
    supports: (method: AuthMethod) => providers.some((p) => p.supports(method)),
    async authenticate(credential: Credential, request: AuthRequest, signal: AbortSignal): Promise<AuthDecision> {
      let last: AuthDecision = { outcome: 'reject', reason: 'NO_PROVIDER' };
      for (const provider of providers) {
        if (!provider.supports(credential.method)) continue;
        const decision = await provider.authenticate(credential, request, signal);
        if (decision.outcome !== 'reject') return decision;
        last = decision;
      }
      return last;
    },
  };
}
