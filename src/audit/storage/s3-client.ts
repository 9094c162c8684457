import { S3Client } from '@aws-sdk/client-s3';

export interface S3Settings {
  readonly region: string;
  readonly endpoint?: string;
  readonly accessKey?: string;
  readonly secretKey?: string;
  readonly pathStyleAccess: boolean;
}

/**
 * An S3 client that also works against S3-compatible servers (MinIO, s3rver): explicit endpoint
 * and path-style addressing, checksums only where required. The SDK's own retries are off:
 * the upload queue retries with the one retry helper (core/retry.ts), from the spool.
 */
export function createS3Client(settings: S3Settings): S3Client {
  return new S3Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.pathStyleAccess,
    ...(settings.accessKey && settings.secretKey
      ? { credentials: { accessKeyId: settings.accessKey, secretAccessKey: settings.secretKey } }
      : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 120_000 },
  });
}

/** Splits "s3://bucket/prefix/" into its parts. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!match) throw new Error(`not an s3:// URL: ${url}`);
  return { bucket: match[1] as string, prefix: match[2] ?? '' };
}
