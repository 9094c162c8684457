/** Plain TCP helpers for forwarding tests: servers on the test host, free ports, reachability. */
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export interface TestTcpServer {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: () => number;
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1, port 0, running `onConnection` for each socket. */
export async function startTcpServer(onConnection: (socket: Socket) => void): Promise<TestTcpServer> {
  let accepted = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => accepted,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port that was free on 127.0.0.1 a moment ago (for `ssh -L`, which cannot pick one itself). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The socket error code of connecting to host:port from the test host ('CONNECTED' when it worked). */
export async function connectOutcome(host: string, port: number, timeoutMs = 3000): Promise<string> {
  const socket = connect({ host, port });
  try {
    return await new Promise<string>((resolve) => {
      socket.once('connect', () => resolve('CONNECTED'));
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(String(err.code)));
      setTimeout(() => resolve('TIMEOUT'), timeoutMs).unref();
    });
  } finally {
    socket.destroy();
  }
}

/** Sends `request` on a fresh connection to 127.0.0.1:port, half-closes, and collects the answer. */
export async function exchange(port: number, request: string | Buffer): Promise<Buffer> {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  await once(socket, 'connect');
  socket.end(request);
  await once(socket, 'close');
  return Buffer.concat(chunks);
}

/**
 * Like `exchange`, through a SOCKS5 proxy (OpenSSH `-D`) on 127.0.0.1:socksPort: no auth, CONNECT
 * to an IPv4 address (RFC 1928), then the request.
 */
export async function socksExchange(socksPort: number, ipv4: string, port: number, request: string | Buffer): Promise<Buffer> {
  const socket = connect({ host: '127.0.0.1', port: socksPort });
  await once(socket, 'connect');
  let buffered = Buffer.alloc(0);
  const waiters: Array<() => void> = [];
  socket.on('data', (d: Buffer) => {
    buffered = Buffer.concat([buffered, d]);
    waiters.splice(0).forEach((w) => w());
  });
  const read = async (n: number): Promise<Buffer> => {
    while (buffered.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
    const out = buffered.subarray(0, n);
    buffered = buffered.subarray(n);
    return out;
  };
  socket.write(Buffer.from([5, 1, 0]));
  const method = await read(2);
  if (method[0] !== 5 || method[1] !== 0) throw new Error(`SOCKS method refused: ${method.toString('hex')}`);
  socket.write(Buffer.from([5, 1, 0, 1, ...ipv4.split('.').map(Number), port >> 8, port & 0xff]));
  const reply = await read(10);
  if (reply[1] !== 0) throw new Error(`SOCKS connect failed: reply ${reply[1]}`);
  const closed = once(socket, 'close');
  socket.end(request);
  await closed;
  return buffered;
}
