/**
 * delegateConnection (src/backend/delegating-connection.ts): a wrapper passes every member the
 * wrapped connection has, bound to it, keeps absent members absent, and lets overrides win.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, type Duplex } from 'node:stream';
import type { BackendConnection, FilesRequest, Process, ProcessRequest, TcpListener, WorkloadFiles } from '../../src/backend/backend.js';
import { delegateConnection } from '../../src/backend/index.js';

/** A backend connection as the real ones are: a class whose methods need `this` (private state). */
class FullConnection implements BackendConnection {
  readonly #calls: string[] = [];
  get calls(): readonly string[] {
    return this.#calls;
  }
  startProcess(request: ProcessRequest): Promise<Process> {
    this.#calls.push(`startProcess:${request.kind}`);
    return Promise.reject(new Error('no process in this test'));
  }
  openTcp(host: string, port: number): Promise<Duplex> {
    this.#calls.push(`openTcp:${host}:${port}`);
    return Promise.resolve(new PassThrough());
  }
  listenTcp(bindAddress: string, port: number): Promise<TcpListener> {
    this.#calls.push(`listenTcp:${bindAddress}:${port}`);
    return Promise.resolve({ port, closed: Promise.resolve(), close: () => Promise.resolve() });
  }
  hasSubsystem(name: string): Promise<boolean> {
    this.#calls.push(`hasSubsystem:${name}`);
    return Promise.resolve(false);
  }
  openFiles(request: FilesRequest): Promise<WorkloadFiles> {
    this.#calls.push(`openFiles:${request.channelId}`);
    return Promise.reject(new Error('no files in this test'));
  }
  close(reason: string): Promise<void> {
    this.#calls.push(`close:${reason}`);
    return Promise.resolve();
  }
}

/** Only what every backend must have (like the Kubernetes backend today). */
class MinimalConnection implements BackendConnection {
  readonly calls: string[] = [];
  startProcess(): Promise<Process> {
    return Promise.reject(new Error('no process in this test'));
  }
  close(reason: string): Promise<void> {
    this.calls.push(`close:${reason}`);
    return Promise.resolve();
  }
}

describe('delegateConnection', () => {
  it('passes every member through, bound to the wrapped connection', async () => {
    const conn = new FullConnection();
    const wrapped = delegateConnection(conn);
    await assert.rejects(wrapped.startProcess({ channelId: 0, kind: 'exec', command: 'true', env: {} }), /no process/);
    (await wrapped.openTcp!('127.0.0.1', 8080)).destroy();
    await (await wrapped.listenTcp!('localhost', 0, () => undefined)).close();
    assert.equal(await wrapped.hasSubsystem!('sftp'), false);
    await assert.rejects(wrapped.openFiles!({ channelId: 3 }), /no files/);
    await wrapped.close('done');
    assert.deepEqual(conn.calls, ['startProcess:exec', 'openTcp:127.0.0.1:8080', 'listenTcp:localhost:0', 'hasSubsystem:sftp', 'openFiles:3', 'close:done']);
    assert.deepEqual(Object.keys(wrapped).sort(), ['close', 'hasSubsystem', 'listenTcp', 'openFiles', 'openTcp', 'startProcess']);
  });

  it('keeps absent optional members absent, and drops overrides of them (a wrapper adds no capability)', async () => {
    const conn = new MinimalConnection();
    const wrapped = delegateConnection(conn, { openTcp: () => Promise.resolve(new PassThrough()) });
    assert.deepEqual(Object.keys(wrapped).sort(), ['close', 'startProcess']);
    for (const member of ['openTcp', 'listenTcp', 'hasSubsystem', 'openFiles'] as const) {
      assert.equal(member in wrapped, false, member);
      assert.equal(wrapped[member], undefined, member);
    }
    await wrapped.close('bye');
    assert.deepEqual(conn.calls, ['close:bye']);
  });

  it('overrides win; the rest still reaches the wrapped connection', async () => {
    const conn = new FullConnection();
    const seen: string[] = [];
    const wrapped = delegateConnection(conn, {
      async close(reason) {
        seen.push(`override:${reason}`);
        await conn.close(reason);
      },
    });
    await wrapped.close('end');
    assert.equal(await wrapped.hasSubsystem!('sftp'), false);
    assert.deepEqual(seen, ['override:end']);
    assert.deepEqual(conn.calls, ['close:end', 'hasSubsystem:sftp']);
  });
});
