/**
 * The Kubernetes base stays consistent with portier itself: its configuration passes
 * portier's own validation, the container ports and probes match the configured listeners and
 * admin port, and the grace period leaves room to drain.
 */
import { readFileSync } from 'node:fs';
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
    .replace('/etc/portier/config/users', join(base, 'users'));
  const loaded = parseConfig(text, join(base, 'portier.yaml'));
  const container = deployment().spec.template.spec.containers[0] as Container;

  test('the configuration is valid for portier', () => {
    expect(loaded.listeners.length).toBeGreaterThan(0);
    expect(container.args).toEqual(['serve', '-c', '/etc/portier/config/portier.yaml']);
    expect(container.volumeMounts.map((m) => m.mountPath)).toEqual(['/etc/portier/config', '/etc/portier/tls']);
  });

  test('container ports match the listeners and the admin port; probes use the admin port', () => {
    const ports = Object.fromEntries(container.ports.map((p) => [p.name, p.containerPort]));
    for (const l of loaded.listeners) expect(ports[l.name], l.name).toBe(l.port);
    expect(ports['admin']).toBe(Number(loaded.config.admin_listen?.split(':').at(-1)));
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/livez', port: 'admin' });
  });

  test('the grace period covers the preStop pause plus shutdown_timeout', () => {
    const grace = deployment().spec.template.spec.terminationGracePeriodSeconds;
    expect(grace).toBeGreaterThan(container.lifecycle.preStop.sleep.seconds + loaded.config.shutdown_timeout / 1000);
  });
});
