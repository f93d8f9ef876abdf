/**
 * Real TLS clients for the TLS tests: a python3 `ssl` client (implicit TLS, IMAP STARTTLS or
 * POP3 STLS, SNI or none, ALPN, cipher and version limits, a client certificate, session
 * resumption, then protocol lines) and `openssl s_client`. Both report what they saw; the
 * certificate comes back as DER and is read here.
 */
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { runPython } from '../support/python-clients.js';

export interface PyTlsArgs {
  port: number;
  host?: string;
  /** Source address; default 127.0.0.5 (not "local" to portier). */
  src?: string;
  /** Upgrade with IMAP STARTTLS / POP3 STLS after the greeting; implicit TLS when absent. */
  starttls?: 'imap' | 'pop3';
  /** SNI; none sent when absent. */
  sni?: string;
  /** Verify the server against this CA file (and, with checkHostname, the SNI name). */
  ca?: string;
  checkHostname?: boolean;
  maxVersion?: '1.2' | '1.3';
  minVersion?: '1.2' | '1.3';
  ciphers?: string;
  alpn?: string[];
  cert?: string;
  key?: string;
  /** Connect this many times, resuming the first connection's session (TLS 1.2 only in python). */
  connections?: number;
  /** Lines to send after TLS; with a tag, read up to the tagged reply, else one line. */
  commands?: [string, string | null][];
}

export interface PyTlsConn {
  greeting?: string;
  starttls?: string;
  version?: string;
  cipher?: string;
  alpn?: string | null;
  reused?: boolean;
  der?: string;
  replies?: string[][];
  error?: string;
}

const PY = String.raw`
import base64, json, socket, ssl, sys
a = json.loads(sys.argv[1])
def readline(s):
    buf = b''
    while not buf.endswith(b'\n'):
        c = s.recv(1)
        if not c:
            raise EOFError('closed by server; got %r' % buf)
        buf += c
    return buf.decode('latin1').rstrip('\r\n')
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
if a.get('ca'):
    ctx.load_verify_locations(a['ca'])
    ctx.check_hostname = bool(a.get('checkHostname'))
else:
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
V = {'1.2': ssl.TLSVersion.TLSv1_2, '1.3': ssl.TLSVersion.TLSv1_3}
if a.get('maxVersion'): ctx.maximum_version = V[a['maxVersion']]
if a.get('minVersion'): ctx.minimum_version = V[a['minVersion']]
if a.get('ciphers'): ctx.set_ciphers(a['ciphers'])
if a.get('alpn'): ctx.set_alpn_protocols(a['alpn'])
if a.get('cert'): ctx.load_cert_chain(a['cert'], a['key'])
results = []
session = None
for n in range(a.get('connections', 1)):
    out = {}
    results.append(out)
    try:
        raw = socket.create_connection((a.get('host', '127.0.0.1'), a['port']), 10, source_address=(a.get('src', '127.0.0.5'), 0))
        mode = a.get('starttls')
        if mode == 'imap':
            out['greeting'] = readline(raw)
            raw.sendall(b'S STARTTLS\r\n')
            out['starttls'] = readline(raw)
        elif mode == 'pop3':
            out['greeting'] = readline(raw)
            raw.sendall(b'STLS\r\n')
            out['starttls'] = readline(raw)
        s = ctx.wrap_socket(raw, server_hostname=a.get('sni'), session=session)
        out['version'] = s.version()
        out['cipher'] = s.cipher()[0]
        out['alpn'] = s.selected_alpn_protocol()
        out['reused'] = s.session_reused
        out['der'] = base64.b64encode(s.getpeercert(True)).decode()
        if not mode:
            out['greeting'] = readline(s)
        replies = []
        for line, tag in a.get('commands', []):
            s.sendall(line.encode('utf8') + b'\r\n')
            got = [readline(s)]
            while tag is not None and not got[-1].startswith(tag + ' '):
                got.append(readline(s))
            replies.append(got)
        out['replies'] = replies
        session = s.session
        s.close()
    except Exception as e:
        out['error'] = '%s: %s' % (type(e).__name__, e)
print(json.dumps(results))
`;

/** One or more connections (see `connections`) with python3's ssl module. */
export function pyTls(args: PyTlsArgs): Promise<PyTlsConn[]> {
  return runPython<PyTlsConn[]>('python3 ssl client', PY, { args: [JSON.stringify(args)], timeoutMs: 30_000 });
}

/** The first (or only) connection; throws with the client's error when the handshake failed. */
export async function pyTlsOk(args: PyTlsArgs): Promise<PyTlsConn & { der: string }> {
  const [r] = await pyTls(args);
  if (r === undefined || r.error !== undefined || r.der === undefined) throw new Error(`TLS connection failed: ${r?.error ?? 'no result'}`);
  return r as PyTlsConn & { der: string };
}

export interface SeenCert {
  cn: string | undefined;
  keyType: string | undefined;
  serial: string;
  issuerCn: string | undefined;
}

export function seenCert(der: string): SeenCert {
  const c = new X509Certificate(Buffer.from(der, 'base64'));
  return {
    cn: /(?:^|\n)CN=([^\n]+)/.exec(c.subject)?.[1],
    keyType: c.publicKey.asymmetricKeyType,
    serial: c.serialNumber,
    issuerCn: /(?:^|\n)CN=([^\n]+)/.exec(c.issuer)?.[1],
  };
}

/**
 * `openssl s_client` with these arguments; `input` is written after `delayMs` (s_client reads
 * stdin commands such as `R` for renegotiation), then stdin is closed after `holdMs`.
 * Resolves with stdout+stderr whatever the exit code.
 */
export function sClient(args: string[], opts: { input?: string; delayMs?: number; holdMs?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn('openssl', ['s_client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
    child.stderr.on('data', (d: Buffer) => (out += d.toString('latin1')));
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('close', () => {
      clearTimeout(killer);
      resolve(out);
    });
    child.stdin.on('error', () => {});
    setTimeout(() => {
      if (opts.input !== undefined) child.stdin.write(opts.input);
      setTimeout(() => child.stdin.end(), opts.holdMs ?? 700);
    }, opts.delayMs ?? 300);
  });
}
