import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFEST_FILE, STATE_FILE } from '../manifest.js';
import { safeSegment } from '../key-template.js';
import type { AuditStorage, SealedRecording } from './storage.js';

/** Name of the spool inside `audit.file.directory` (same file system, so storing is a rename). */
export const FILE_SPOOL_DIR = '.spool';

/**
 * `audit.storage: file`: a sealed recording is moved from `<directory>/.spool/<id>/` to
 * `<directory>/<id>/` with one atomic rename.
 */
export function createFileStorage(directory: string): AuditStorage {
  return {
    kind: 'file',
    movesSpool: true,
    async store({ dir, manifest }: SealedRecording): Promise<string> {
      const target = join(directory, safeSegment(manifest.connectionId));
      if (existsSync(join(target, MANIFEST_FILE))) {
        // Stored by an earlier attempt that was interrupted before the spool copy was removed.
        await rm(dir, { recursive: true, force: true });
        return target;
      }
      await mkdir(directory, { recursive: true });
      await rm(join(dir, STATE_FILE), { force: true });
      await rm(target, { recursive: true, force: true });
      await rename(dir, target);
      return target;
    },
  };
}
