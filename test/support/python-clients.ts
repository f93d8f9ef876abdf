/**
 * Real clients written with python3's standard library, run as `python3 -c <script>`: each
 * prints one JSON object (what it saw) on stdout. `runPython` runs any such script; `poplib`
 * is a POP3 client (USER/PASS with or without STLS, APOP) connecting from 127.0.0.5.
 */
import { execFile } from 'node:child_process';
import { CLIENT_IP } from './clients.js';

export interface RunPythonOptions {
  readonly args?: readonly string[];
  /** Written to the script's stdin. */
  readonly stdin?: string;
  readonly timeoutMs: number;
  readonly maxBuffer?: number;
}

/** Run `script`; resolves with its stdout parsed as JSON, rejects (naming `what`) when it fails. */
export function runPython<T>(what: string, script: string, opts: RunPythonOptions): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'python3',
      ['-c', script, ...(opts.args ?? [])],
      { timeout: opts.timeoutMs, ...(opts.maxBuffer !== undefined ? { maxBuffer: opts.maxBuffer } : {}) },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${what} failed: ${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as T);
      },
    );
    if (opts.stdin !== undefined) child.stdin?.end(opts.stdin);
  });
}

const POPLIB = String.raw`
import hashlib, json, poplib, socket, ssl, sys
a = json.loads(sys.argv[1])
class P(poplib.POP3):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(a['source'], 0))
user, pw, mode = a['user'], a['password'], a['mode']
out = {}
try:
    p = P(a['host'], a['port'], timeout=10)
    out['welcome'] = p.getwelcome().decode()
    if mode == 'apop':
        out['reply'] = p.apop(user, pw).decode()
        out['stat'] = list(p.stat())
        out['quit'] = p.quit().decode()
    elif mode == 'apop-wrong-digest':
        out['reply'] = p._shortcmd('APOP %s %s' % (user, hashlib.md5(b'not the timestamp').hexdigest())).decode()
    else:
        if mode == 'stls':
            out['stls'] = p.stls(context=ssl.create_default_context(cafile=a['caFile'])).decode()
        out['capa'] = sorted(p.capa().keys())
        p.user(user)
        out['pass'] = p.pass_(pw).decode()
        out['stat'] = list(p.stat())
        out['messages'] = [b'\r\n'.join(p.retr(i + 1)[1]).decode('latin1') for i in range(out['stat'][0])]
        out['quit'] = p.quit().decode()
except poplib.error_proto as e:
    out['error'] = e.args[0].decode('latin1') if isinstance(e.args[0], bytes) else str(e)
print(json.dumps(out))
`;

export interface PoplibSpec {
  readonly port: number;
  readonly host?: string;
  /** Source address; default CLIENT_IP. */
  readonly source?: string;
  readonly user: string;
  readonly password: string;
  /**
   * `user-pass` (default): CAPA, USER/PASS, STAT, RETR of every message, QUIT; `stls`: the same
   * after STLS (verifying with caFile); `apop`: APOP, STAT, QUIT; `apop-wrong-digest`: APOP
   * with a digest of something other than the greeting's timestamp.
   */
  readonly mode?: 'user-pass' | 'stls' | 'apop' | 'apop-wrong-digest';
  readonly caFile?: string;
}

export interface PoplibResult {
  welcome?: string;
  stls?: string;
  capa?: string[];
  /** The PASS reply. */
  pass?: string;
  /** The APOP reply. */
  reply?: string;
  stat?: number[];
  messages?: string[];
  quit?: string;
  /** The server's -ERR line that ended the session. */
  error?: string;
}

/** One POP3 session with python3's poplib. */
export function poplib(spec: PoplibSpec): Promise<PoplibResult> {
  const args = { host: '127.0.0.1', source: CLIENT_IP, mode: 'user-pass', caFile: '', ...spec };
  return runPython<PoplibResult>('poplib', POPLIB, { args: [JSON.stringify(args)], timeoutMs: 20_000 });
}
