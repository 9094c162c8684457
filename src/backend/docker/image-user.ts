import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { AirlockError } from '../../core/errors.js';
import { mapEngineError } from './engine-errors.js';
import { withProbeContainer, type ProbeTarget } from './probe-container.js';
import { readContainerFile } from './container-fs.js';
import type { DockerTimeouts } from './options.js';
import { isRootUserSpec, parseGroup, parsePasswd, pickDefaultUser, resolveUserIds, type GroupEntry, type PasswdEntry } from './passwd.js';

/**
 * Who the user's programs run as, decided once per connection (secure default: never root
 * unless the image offers nobody else):
 *   1. the configured user;
 *   2. else the image's USER when it is not root;
 *   3. else the first regular user (uid 1000..59999) in the image's /etc/passwd;
 *   4. else root, with a warning.
 * /etc/passwd and /etc/group are read once per image id through a created-but-never-started
 * probe container and the archive API (no process runs, so no /bin/sh or `id` is needed).
 */
export interface ResolvedUser {
  /** Config.User / exec User; '' leaves the image default (root). */
  readonly spec: string;
  readonly source: 'option' | 'image' | 'passwd' | 'root';
  /** Numeric ids, when they were needed (file ownership) or came for free. */
  readonly ids?: { readonly uid: number; readonly gid: number };
}

interface ImageAccounts {
  readonly passwd: readonly PasswdEntry[];
  readonly groups: readonly GroupEntry[];
}

export interface ImageUsersDeps {
  readonly docker: Docker;
  readonly timeouts: DockerTimeouts;
  readonly clock: Clock;
  readonly logger: Logger;
}

export class ImageUsers {
  readonly #deps: ImageUsersDeps;
  readonly #accounts = new Map<string, Promise<ImageAccounts>>();

  constructor(deps: ImageUsersDeps) {
    this.#deps = deps;
  }

  async resolve(
    image: Docker.ImageInspectInfo,
    configured: string | undefined,
    needIds: boolean,
    probe: { labels: Record<string, string>; name: string; signal?: AbortSignal; logger: Logger },
  ): Promise<ResolvedUser> {
    const explicit = configured?.trim();
    const imageUser = image.Config?.User?.trim() ?? '';
    let spec: string;
    let source: ResolvedUser['source'];
    if (explicit) {
      spec = explicit;
      source = 'option';
    } else if (!isRootUserSpec(imageUser)) {
      spec = imageUser;
      source = 'image';
    } else {
      const accounts = await this.#accountsOf(image, probe);
      const pick = pickDefaultUser(accounts.passwd);
      if (pick) return { spec: pick.name, source: 'passwd', ids: { uid: pick.uid, gid: pick.gid } };
      probe.logger.warn({ image: image.Id }, 'the image has no non-root user; programs run as root');
      return { spec: imageUser, source: 'root', ids: { uid: 0, gid: 0 } };
    }
    if (!needIds) return { spec, source };
    const accounts = await this.#accountsOf(image, probe);
    const ids = resolveUserIds(spec, accounts.passwd, accounts.groups);
    if (!ids) {
      throw new AirlockError('CONTAINER_START_FAILED', `user "${spec}" does not exist in the image`, { details: { user: spec, image: image.Id } });
    }
    return { spec, source, ids };
  }

  #accountsOf(image: Docker.ImageInspectInfo, probe: ProbeTarget): Promise<ImageAccounts> {
    let pending = this.#accounts.get(image.Id);
    if (!pending) {
      pending = this.#readAccounts(image.Id, probe);
      this.#accounts.set(image.Id, pending);
      // A failed read is not cached: the next connection tries again.
      pending.catch(() => this.#accounts.delete(image.Id));
    }
    return pending;
  }

  async #readAccounts(imageId: string, probe: ProbeTarget): Promise<ImageAccounts> {
    try {
      return await withProbeContainer(this.#deps, imageId, probe, async (container, signal) => {
        const [passwd, group] = await Promise.all([readContainerFile(container, '/etc/passwd', signal), readContainerFile(container, '/etc/group', signal)]);
        return { passwd: parsePasswd(passwd?.toString('utf8') ?? ''), groups: parseGroup(group?.toString('utf8') ?? '') };
      });
    } catch (err) {
      throw mapEngineError(err, 'CONTAINER_START_FAILED', 'reading the image\'s /etc/passwd', { image: imageId });
    }
  }
}
