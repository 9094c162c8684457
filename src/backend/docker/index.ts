export { createDockerBackend, type DockerBackend } from './docker-backend.js';
export { createReaper, type Reaper, type ReaperDeps } from './reaper.js';
export { createDockerClient, type DockerClient } from './engine-client.js';
export { LABEL } from './labels.js';
export type {
  DockerBackendOptions,
  DockerContainerOptions,
  DockerHostConfigOptions,
  DockerPoolOptions,
  DockerTimeouts,
  DockerTlsOptions,
  ImagePullPolicy,
} from './options.js';
