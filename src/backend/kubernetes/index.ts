export { createKubernetesBackend } from './kubernetes-backend.js';
export { createKubernetesReaper, podReapReason, type KubernetesReaper, type KubernetesReaperDeps } from './reaper.js';
export { buildKubeConfig, createKubeClient, type KubeClient } from './kube-client.js';
export { DEFAULT_IDLE_COMMAND } from './options.js';
export type { KubernetesBackendOptions, KubernetesConnectionOptions, KubernetesPodOptions, KubernetesTimeouts } from './options.js';
