export { createDockerBackend } from './docker-backend.js';
export { createReaper, type Reaper, type ReaperDeps } from './reaper.js';
export { createDockerClient, type DockerClient } from './engine-client.js';
export { LABEL } from './labels.js';
export type {
  DockerBackendOptions,
  DockerContainerOptions,
  DockerHostConfigOptions,
  DockerTimeouts,
  DockerTlsOptions,
  ImagePullPolicy,
} from './options.js';
