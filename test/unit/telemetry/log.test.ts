/**
 * The logger's safety net: secret-named keys are redacted in the line's object and two levels
 * below it, in child bindings too, through a real pino logger writing JSON lines; the caller's
 * objects are left as they were; a line without secrets is passed through uncopied.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactSecrets, SessionLogger } from '../../../src/telemetry/log.js';

function capture(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

describe('redactSecrets', () => {
  it('replaces secret keys at the top and two levels down, in objects and arrays', () => {
    const input = {
      user: 'alice',
      password: 'Sntl-1',
      fields: { host: 'b1', pass: 'Sntl-2', nested: { master_password: 'Sntl-3', keep: 1 } },
      list: [{ token: 'Sntl-4' }, 'x'],
    };
    const out = redactSecrets(input);
    expect(out).toEqual({
      user: 'alice',
      password: '[redacted]',
      fields: { host: 'b1', pass: '[redacted]', nested: { master_password: '[redacted]', keep: 1 } },
      list: [{ token: '[redacted]' }, 'x'],
    });
    expect(Array.isArray(out.list)).toBe(true);
    // The caller's object is untouched.
    expect(input.password).toBe('Sntl-1');
    expect(input.fields.pass).toBe('Sntl-2');
    expect(input.fields.nested.master_password).toBe('Sntl-3');
    expect(input.list[0]).toEqual({ token: 'Sntl-4' });
  });

  it('stops three levels down (the depth pino paths k, *.k, *.*.k covered)', () => {
    const deep = { a: { b: { c: { secret: 'kept' } } } };
    expect(redactSecrets(deep)).toBe(deep);
  });

  it('returns the same object when nothing matched, and leaves undefined secrets alone', () => {
    const clean = { user: 'bob', rip: '192.0.2.1', nested: { backend: 'b1' }, pass: undefined };
    expect(redactSecrets(clean)).toBe(clean);
  });

  it('keeps an Error readable when a secret inside it is redacted', () => {
    const err = Object.assign(new Error('connect failed'), { connect: 'host=db password=Sntl-5' });
    const out = redactSecrets({ err }) as unknown as { err: Record<string, unknown> };
    expect(out.err['connect']).toBe('[redacted]');
    expect(out.err['message']).toBe('connect failed');
    expect(out.err['type']).toBe('Error');
    expect(String(out.err['stack'])).toContain('connect failed');
  });

  it('does not descend into Buffers', () => {
    const b = Buffer.from('password');
    const line = { data: b };
    expect(redactSecrets(line)).toBe(line);
  });
});

describe('createLogger', () => {
  it('writes lines with secrets redacted, in the object and in child bindings', () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'info', instance: 'test', destination: stream });
    log.info({ user: 'alice', password: 'Sntl-6', fields: { pass: 'Sntl-7' } }, 'login');
    log.child({ session: 's1', token: 'Sntl-8' }).warn({ ok: true }, 'child line');
    log.debug({ password: 'Sntl-9' }, 'below the level');
    const text = JSON.stringify(lines);
    for (const s of ['Sntl-6', 'Sntl-7', 'Sntl-8', 'Sntl-9']) expect(text).not.toContain(s);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 'info', instance: 'test', user: 'alice', password: '[redacted]', fields: { pass: '[redacted]' }, msg: 'login' });
    expect(lines[1]).toMatchObject({ level: 'warn', session: 's1', token: '[redacted]', ok: true, msg: 'child line' });
  });

  it('SessionLogger says whether a level is written, and binds the session only when a line is', () => {
    const { lines, stream } = capture();
    const log = new SessionLogger(createLogger({ level: 'warn', instance: 'test', destination: stream }), 'sess-1', 'imap');
    expect(log.enabled('info')).toBe(false);
    expect(log.enabled('warn')).toBe(true);
    log.info({ a: 1 }, 'dropped');
    log.warn({ pass: 'Sntl-10' }, 'kept');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ session: 'sess-1', proto: 'imap', pass: '[redacted]', msg: 'kept' });
  });
});

describe('createLogger keeps pino serializers', () => {
  it('an Error under err is still serialized with its type and message', () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'info', instance: 'test', destination: stream });
    log.error({ err: new TypeError('boom') }, 'failed');
    expect(lines[0]?.['err']).toMatchObject({ type: 'TypeError', message: 'boom' });
  });
});
