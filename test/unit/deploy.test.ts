/**
 * The Kubernetes base stays consistent with portier itself: its configuration passes
 * portier's own validation, the container ports and probes match the configured listeners and
 * admin port, and the grace period leaves room to drain.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/config/load.js';

const base = new URL('../../deploy/base/', import.meta.url).pathname;
const conf = new URL('../../conf/dev/', import.meta.url).pathname;

interface Container {
  ports: { name: string; containerPort: number }[];
  readinessProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  lifecycle: { preStop: { sleep: { seconds: number } } };
  args: string[];
  volumeMounts: { name: string; mountPath: string }[];
}

function deployment(): { spec: { template: { spec: { terminationGracePeriodSeconds: number; containers: Container[] } } } } {
  return parseAllDocuments(readFileSync(join(base, 'deployment.yaml'), 'utf8'))[0]?.toJS();
}

describe('deploy/base', () => {
  // The mounted paths do not exist here: point them at the development files for validation.
  const text = readFileSync(join(base, 'portier.yaml'), 'utf8')
    .replace('/etc/portier/tls/tls.crt', join(conf, 'cert.pem'))
    .replace('/etc/portier/tls/tls.key', join(conf, 'key.pem'))
    .replace('/etc/portier/config/users', join(base, 'users'))
    .replace('mail_temp_dir: /var/spool/portier', `mail_temp_dir: ${tmpdir()}`);
  const loaded = parseConfig(text, join(base, 'portier.yaml'));
  const container = deployment().spec.template.spec.containers[0] as Container;

  test('the configuration is valid for portier', () => {
    expect(loaded.listeners.length).toBeGreaterThan(0);
    expect(container.args).toEqual(['serve', '-c', '/etc/portier/config/portier.yaml']);
    expect(container.volumeMounts.map((m) => m.mountPath)).toEqual(['/etc/portier/config', '/etc/portier/tls', '/var/spool/portier', '/run/portier']);
    // What portier writes lives on those writable mounts (the root filesystem is read-only).
    expect(readFileSync(join(base, 'portier.yaml'), 'utf8')).toMatch(/^mail_temp_dir: \/var\/spool\/portier$/m);
    expect(loaded.config.admin_socket.startsWith('/run/portier/')).toBe(true);
  });

  test('container ports match the listeners and the admin port; probes use the admin port', () => {
    const ports = Object.fromEntries(container.ports.map((p) => [p.name, p.containerPort]));
    for (const l of loaded.listeners) expect(ports[l.name], l.name).toBe(l.port);
    expect(ports['admin']).toBe(Number(loaded.config.admin_listen?.split(':').at(-1)));
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/livez', port: 'admin' });
  });

  test('every Service port targets a named container port; LMTP is never on the public Service', () => {
    const names = new Set(container.ports.map((p) => p.name));
    const services = parseAllDocuments(readFileSync(join(base, 'service.yaml'), 'utf8')).map(
      (d) => d.toJS() as { metadata: { name: string }; spec: { type: string; ports: { name: string; targetPort: string }[] } },
    );
    for (const svc of services) for (const p of svc.spec.ports) expect(names.has(p.targetPort), `${svc.metadata.name}/${p.name}`).toBe(true);
    const publicPorts = services.filter((s) => s.spec.type === 'LoadBalancer').flatMap((s) => s.spec.ports.map((p) => p.targetPort));
    expect(publicPorts).toEqual(expect.arrayContaining(['imap', 'imaps', 'pop3', 'pop3s']));
    expect(publicPorts).not.toContain('lmtp');
    expect(publicPorts).not.toContain('admin');
  });

  test('the grace period covers the preStop pause plus shutdown_timeout', () => {
    const grace = deployment().spec.template.spec.terminationGracePeriodSeconds;
    expect(grace).toBeGreaterThan(container.lifecycle.preStop.sleep.seconds + loaded.config.shutdown_timeout / 1000);
  });
});
