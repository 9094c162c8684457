/**
 * Gateway CPU time per MB moved (user+system of the `airlock serve` process, from /proc), for
 * container→client and client→container — a figure that, unlike MB/s, barely moves when other
 * work shares the machine. Use it to judge hot-path changes on a busy host.
 *
 *   node --import tsx bench/gateway-cpu.ts [--size-mb 256] [--rounds 3] [--tty]
 */
import { readFile } from 'node:fs/promises';
import { keyFixture, keyGateway } from '../test/helpers/fixture.js';
import { ensureTestImage } from '../test/helpers/docker.js';
import { throughput, type Direction } from './lib/measure.js';
import { gatewayTarget } from './lib/ssh-target.js';
import { summarize } from './lib/stats.js';
import { table } from './lib/report.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? Number(argv[i + 1]) : fallback;
};
const SIZE = option('size-mb', 256) * 1_000_000;
const ROUNDS = option('rounds', 3);
const TTY = argv.includes('--tty');

/** utime+stime of a process in ms (clock ticks are 100 Hz on Linux). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

await ensureTestImage();
const fx = await keyFixture();
const gw = await keyGateway(fx, { log: { level: 'info' } });
try {
  const t = gatewayTarget('airlock', gw, fx);
  const pid = gw.child.pid!;
  const rows: string[][] = [];
  const cases: Array<{ name: string; dir: Direction; tty: boolean }> = [
    { name: 'container→client', dir: 'out', tty: false },
    { name: 'client→container', dir: 'in', tty: false },
    ...(TTY ? [{ name: 'container→client tty', dir: 'out' as const, tty: true }] : []),
  ];
  for (const { name, dir, tty } of cases) {
    const rates: number[] = [];
    const cpus: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      await gw.waitForIdle(60_000);
      const before = await cpuMs(pid);
      rates.push(await throughput(t, dir, SIZE, { tty }));
      await gw.waitForIdle(60_000);
      cpus.push(((await cpuMs(pid)) - before) / (SIZE / 1e6));
    }
    rows.push([name, summarize(rates).median.toFixed(1), summarize(cpus).median.toFixed(2)]);
  }
  console.log(`\nGateway CPU per MB, ${SIZE / 1e6} MB, ${ROUNDS} rounds\n`);
  console.log(table(['direction', 'MB/s', 'gateway CPU ms/MB'], rows));
} finally {
  await gw.stop();
  await fx.cleanup();
}
