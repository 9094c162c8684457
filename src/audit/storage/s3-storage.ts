import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { MANIFEST_FILE } from '../manifest.js';
import { renderKeyTemplate } from '../key-template.js';
import { objectMetadata, objectTags, type LabelOptions } from '../tags.js';
import { contentType, type AuditStorage, type SealedRecording } from './storage.js';

export interface S3StorageOptions {
  readonly client: S3Client;
  readonly bucket: string;
  readonly keyTemplate: string;
  /** Multipart part size (`audit.s3.uploadPartSize`); larger files go up in parts. */
  readonly partSize: number;
  readonly labels: LabelOptions;
}

/**
 * `audit.storage: s3`: every file of the recording is streamed from the spool to
 * `<rendered keyTemplate><file name>` (multipart above `partSize`), tagged and with user metadata
 * from the manifest; manifest.json goes last. Re-uploading after a failure overwrites the same
 * keys, so retries are safe.
 */
export function createS3Storage(options: S3StorageOptions): AuditStorage {
  return {
    kind: 's3',
    movesSpool: false,
    async store({ dir, manifest }: SealedRecording, signal: AbortSignal): Promise<string> {
      const prefix = renderKeyTemplate(options.keyTemplate, manifest);
      const tags = objectTags(manifest, options.labels);
      const metadata = objectMetadata(manifest, options.labels);
      for (const name of [...manifest.files.map((f) => f.name), MANIFEST_FILE]) {
        signal.throwIfAborted();
        const upload = new Upload({
          client: options.client,
          params: {
            Bucket: options.bucket,
            Key: prefix + name,
            Body: createReadStream(join(dir, name)),
            ContentType: contentType(name),
            Metadata: metadata,
          },
          tags,
          partSize: options.partSize,
          // Parts in flight per file; memory is queueSize × partSize per parallel upload.
          queueSize: 2,
          leavePartsOnError: false,
        });
        const onAbort = () => void upload.abort().catch(() => undefined);
        signal.addEventListener('abort', onAbort, { once: true });
        try {
          await upload.done();
        } finally {
          signal.removeEventListener('abort', onAbort);
        }
      }
      return `s3://${options.bucket}/${prefix}`;
    },
  };
}
