/** The create body: secure defaults, explicit options, raw passthrough, protected keys, labels. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildCreateBody, buildHostConfig, mergeSecurityOpt, tmpfsMountPoints } from '../../src/backend/docker/container-spec.js';
import { buildLabels, containerName } from '../../src/backend/docker/labels.js';
import type { DockerContainerOptions } from '../../src/backend/docker/options.js';

const container: DockerContainerOptions = { image: 'img', env: {}, labels: { team: 'ci' }, extra: {} };

describe('buildHostConfig', () => {
  it('leaves NetworkMode to the Engine unless configured; extra may set it too', () => {
    assert.equal('NetworkMode' in buildHostConfig({ extra: {} }), false);
    assert.equal(buildHostConfig({ networkMode: 'bridge', extra: { networkMode: 'none' } })['NetworkMode'], 'none');
  });

  it('applies the secure defaults when nothing is configured', () => {
    assert.deepEqual(buildHostConfig({ extra: {} }), {
      Init: true,
      LogConfig: { Type: 'none', Config: {} },
      Memory: 1024 ** 3,
      NanoCpus: 1e9,
      PidsLimit: 512,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      AutoRemove: false,
    });
  });

  it('explicit options override the defaults, extra (any key case) overrides both, AutoRemove stays off', () => {
    const hc = buildHostConfig(
      { memory: 5, pidsLimit: 7, capDrop: ['NET_RAW'], capAdd: ['CHOWN'], readonlyRootfs: true, tmpfs: { '/tmp': 'size=1m' }, networkMode: 'none', extra: { init: false, memory: 9, shmSize: 3, autoRemove: true } },
      [24, 80],
    );
    assert.equal(hc['Init'], false);
    assert.equal(hc['init'], undefined, 'no duplicate key in another case');
    assert.equal(hc['Memory'], 9);
    assert.equal(hc['PidsLimit'], 7);
    assert.deepEqual(hc['CapDrop'], ['NET_RAW']);
    assert.deepEqual(hc['CapAdd'], ['CHOWN']);
    assert.equal(hc['ReadonlyRootfs'], true);
    assert.deepEqual(hc['Tmpfs'], { '/tmp': 'size=1m' });
    assert.equal(hc['NetworkMode'], 'none');
    assert.equal(hc['shmSize'], 3);
    assert.equal(hc['AutoRemove'], false);
    assert.deepEqual(hc['ConsoleSize'], [24, 80]);
  });

  it('merges no-new-privileges into configured security options without duplicating it', () => {
    assert.deepEqual(mergeSecurityOpt(['seccomp=unconfined']), ['no-new-privileges', 'seccomp=unconfined']);
    assert.deepEqual(mergeSecurityOpt(['no-new-privileges', 'no-new-privileges']), ['no-new-privileges']);
    assert.deepEqual(mergeSecurityOpt(['no-new-privileges:false']), ['no-new-privileges:false']);
  });

  it('finds tmpfs mount points in Tmpfs and in Mounts', () => {
    const hc = buildHostConfig({ tmpfs: { '/tmp': '' }, extra: { mounts: [{ type: 'tmpfs', target: '/run' }, { Type: 'volume', Target: '/data' }] } });
    assert.deepEqual(tmpfsMountPoints(hc), ['/tmp', '/run']);
  });
});

describe('buildCreateBody', () => {
  it('overrides entrypoint and cmd, wires stdio, and keeps the gateway labels authoritative', () => {
    const body = buildCreateBody({
      container: { ...container, workingDir: '/w', hostname: 'box', extra: { labels: { 'airlock.managed': 'false', extra: 'yes' }, entrypoint: ['/evil'], stopSignal: 'SIGINT' } },
      hostConfig: { Init: true },
      image: 'img',
      user: 'airlock',
      labels: { 'airlock.managed': 'true', team: 'ci' },
      env: ['A=1'],
      entrypoint: ['/bin/sh', '-c', 'x'],
      tty: true,
      openStdin: true,
    });
    assert.deepEqual(body['Entrypoint'], ['/bin/sh', '-c', 'x']);
    assert.deepEqual(body['Cmd'], []);
    assert.equal(body['entrypoint'], undefined);
    assert.deepEqual(body['Labels'], { 'airlock.managed': 'true', extra: 'yes', team: 'ci' });
    assert.equal(body['User'], 'airlock');
    assert.equal(body['WorkingDir'], '/w');
    assert.equal(body['Hostname'], 'box');
    assert.equal(body['stopSignal'], 'SIGINT');
    assert.equal(body['StdinOnce'], true);
    assert.equal(body['Tty'], true);
  });

  it('leaves User unset for the image default', () => {
    const body = buildCreateBody({ container, hostConfig: {}, image: 'img', user: '', labels: {}, env: [], entrypoint: ['x'], tty: false, openStdin: false });
    assert.equal('User' in body, false);
  });
});

describe('labels', () => {
  it('stamps every airlock label, the deadline when set, and lets no configured label override them', () => {
    const labels = buildLabels({
      gatewayId: 'gw',
      hostname: 'host',
      pid: 42,
      connectionId: 'conn',
      username: 'alice',
      now: new Date('2030-01-01T00:00:00Z'),
      deadline: new Date('2030-01-01T01:00:00Z'),
      role: 'session',
      channelId: 3,
      extra: { team: 'ci', 'airlock.gateway': 'forged' },
    });
    assert.deepEqual(labels, {
      team: 'ci',
      'airlock.managed': 'true',
      'airlock.gateway': 'gw',
      'airlock.gateway-host': 'host',
      'airlock.gateway-pid': '42',
      'airlock.connection': 'conn',
      'airlock.user': 'alice',
      'airlock.created-at': '2030-01-01T00:00:00.000Z',
      'airlock.role': 'session',
      'airlock.deadline': '2030-01-01T01:00:00.000Z',
      'airlock.channel': '3',
    });
  });

  it('names containers airlock-<12 chars of the connection id>-<random>', () => {
    assert.match(containerName('0123456789abcdef0123'), /^airlock-0123456789ab-[0-9a-f]{8}$/);
    assert.match(containerName('a/b c'), /^airlock-a-b-c-[0-9a-f]{8}$/);
  });
});
