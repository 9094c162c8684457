/**
 * Throw-away PKI for the FAKE Kubernetes API server: a CA, a server certificate for 127.0.0.1
 * and a client certificate (CN airlock, like a ServiceAccount-less user), made with the openssl
 * CLI once per test process. Real API servers only speak HTTPS, and @kubernetes/client-node
 * refuses plain HTTP unless TLS verification is switched off, so the fake serves HTTPS by default.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/tmp.js';

const run = promisify(execFile);

export interface FakePki {
  readonly caCert: string;
  readonly serverKey: string;
  readonly serverCert: string;
  readonly clientKey: string;
  readonly clientCert: string;
}

let pending: Promise<FakePki> | undefined;

export function fakePki(): Promise<FakePki> {
  pending ??= create();
  return pending;
}

async function create(): Promise<FakePki> {
  const dir = await tempDir('fake-kube-pki-');
  const p = (name: string) => join(dir.path, name);
  try {
    const days = ['-days', '2'];
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.crt'), '-subj', '/CN=fake-kube-ca', ...days]);
    await writeFile(p('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    await writeFile(p('client.ext'), 'extendedKeyUsage=clientAuth\n');
    for (const [name, subject] of [
      ['server', '/CN=fake-kube-apiserver'],
      ['client', '/CN=airlock/O=airlock'],
    ] as const) {
      await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', subject]);
      await run('openssl', ['x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p(`${name}.crt`), '-extfile', p(`${name}.ext`), ...days]);
    }
    const read = (name: string) => readFile(p(name), 'utf8');
    return {
      caCert: await read('ca.crt'),
      serverKey: await read('server.key'),
      serverCert: await read('server.crt'),
      clientKey: await read('client.key'),
      clientCert: await read('client.crt'),
    };
  } finally {
    await dir.cleanup();
  }
}
