import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { AirlockError } from '../../core/errors.js';
import { engineMessage, isEngineUnreachable, isNotFound, isTimeout, mapEngineError } from './engine-errors.js';
import { callSignal } from './engine-ops.js';
import type { DockerTimeouts, ImagePullPolicy } from './options.js';

/**
 * Makes sure the image is present according to the pull policy and returns its inspect data
 * (id, configured USER). `Never`: must exist locally. `IfNotPresent`: pulled when missing.
 * `Always`: pulled every time — a failed pull fails the connection.
 */
export async function ensureImage(
  docker: Docker,
  image: string,
  policy: ImagePullPolicy,
  options: { timeouts: DockerTimeouts; signal?: AbortSignal; logger: Logger },
): Promise<Docker.ImageInspectInfo> {
  const { timeouts, signal, logger } = options;
  if (policy === 'Always') {
    await pull(docker, image, timeouts, signal, logger);
    return inspectOrThrow(docker, image, timeouts, signal);
  }
  const found = await inspect(docker, image, timeouts, signal);
  if (found) return found;
  if (policy === 'Never') {
    throw new AirlockError('IMAGE_NOT_FOUND', `image ${image} is not present and imagePullPolicy is Never`, {
      userMessage: `the container image "${image}" does not exist`,
      details: { image, policy },
    });
  }
  await pull(docker, image, timeouts, signal, logger);
  return inspectOrThrow(docker, image, timeouts, signal);
}

async function inspect(docker: Docker, image: string, timeouts: DockerTimeouts, signal: AbortSignal | undefined): Promise<Docker.ImageInspectInfo | undefined> {
  try {
    // Through the modem: dockerode's Image.inspect cannot be given an AbortSignal.
    return await new Promise<Docker.ImageInspectInfo>((resolve, reject) => {
      docker.modem.dial(
        {
          path: `/images/${image}/json`,
          method: 'GET',
          abortSignal: callSignal(timeouts.http, signal),
          statusCodes: { 200: true, 404: 'no such image', 500: 'server error' },
        },
        (err, data) => (err ? reject(err) : resolve(data as Docker.ImageInspectInfo)),
      );
    });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw mapEngineError(err, 'BACKEND_UNAVAILABLE', `inspecting image ${image}`, { image });
  }
}

async function inspectOrThrow(docker: Docker, image: string, timeouts: DockerTimeouts, signal: AbortSignal | undefined): Promise<Docker.ImageInspectInfo> {
  const info = await inspect(docker, image, timeouts, signal);
  if (!info) {
    throw new AirlockError('IMAGE_NOT_FOUND', `image ${image} is still missing after the pull`, {
      userMessage: `the container image "${image}" does not exist`,
      details: { image },
    });
  }
  return info;
}

/** Registry answers that mean "no such image" rather than "the registry is unreachable". */
const NOT_FOUND_TEXT = /not found|does not exist|manifest unknown|pull access denied|no such image|repository name must|invalid reference format/i;

async function pull(docker: Docker, image: string, timeouts: DockerTimeouts, signal: AbortSignal | undefined, logger: Logger): Promise<void> {
  const started = Date.now();
  try {
    const stream = (await docker.pull(image, { abortSignal: callSignal(timeouts.containerStart, signal) })) as Readable;
    // The pull's outcome is only known from its progress stream: errors arrive as {"error": ...}.
    const events = await new Promise<Array<Record<string, unknown>>>((resolve, reject) => {
      docker.modem.followProgress(stream, (err, output: unknown[]) => (err ? reject(err) : resolve(output as Array<Record<string, unknown>>)));
    });
    const failed = events.find((e) => typeof e['error'] === 'string');
    if (failed) throw new Error(String(failed['error']));
    logger.info({ image, ms: Date.now() - started }, 'image pulled');
  } catch (err) {
    if (isEngineUnreachable(err)) throw mapEngineError(err, 'BACKEND_UNAVAILABLE', `pulling image ${image}`, { image });
    const message = engineMessage(err);
    const notFound = !isTimeout(err) && (isNotFound(err) || NOT_FOUND_TEXT.test(message));
    throw new AirlockError(notFound ? 'IMAGE_NOT_FOUND' : 'IMAGE_PULL_FAILED', `pulling image ${image}: ${message}`, {
      cause: err,
      userMessage: notFound ? `the container image "${image}" does not exist` : `the container image "${image}" could not be pulled`,
      details: { image },
    });
  }
}
