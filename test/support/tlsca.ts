import { generateKeyPair } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runCommand } from './procs.js';
import { makeTempDir } from './tmp.js';

export type KeyType = 'rsa' | 'ecdsa';

export interface IssueOptions {
  /** DNS names and IP addresses; default: [name]. */
  sans?: string[];
  /** 'rsa' (2048) or 'ecdsa' (P-256). Default 'rsa'. */
  keyType?: KeyType;
  /** Validity ended yesterday. */
  expired?: boolean;
  /** Signed by its own key, not the CA (caFile still names the test root). */
  selfSigned?: boolean;
  /** Encrypt keyFile (PKCS#8, AES-256) with this passphrase. */
  keyPassword?: string;
  /** Issue from an intermediate CA; chainFile then holds leaf + intermediate. */
  intermediate?: boolean;
}

export interface IssuedCert {
  name: string;
  certFile: string;
  keyFile: string;
  /** Leaf followed by the intermediate, if any. */
  chainFile: string;
  /** The test root CA. */
  caFile: string;
}

export interface TestCa {
  dir: string;
  caFile: string;
  caKeyFile: string;
  issue(name: string, opts?: IssueOptions): Promise<IssuedCert>;
}

const genKeyPair = promisify(generateKeyPair);

async function newKey(type: KeyType): Promise<KeyObject> {
  const { privateKey } =
    type === 'ecdsa'
      ? await genKeyPair('ec', { namedCurve: 'P-256' })
      : await genKeyPair('rsa', { modulusLength: 2048 });
  return privateKey;
}

function pem(key: KeyObject, passphrase?: string): string {
  const out =
    passphrase === undefined
      ? key.export({ format: 'pem', type: 'pkcs8' })
      : key.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase });
  return typeof out === 'string' ? out : out.toString('utf8');
}

/** UTCTime as `openssl ca -startdate/-enddate` wants it: YYMMDDHHMMSSZ. */
function asn1Time(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
}

const DAY = 86_400_000;

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

function caConfig(dir: string): string {
  return `[ ca ]
default_ca = test_ca
[ test_ca ]
database = ${dir}/index.txt
new_certs_dir = ${dir}/newcerts
serial = ${dir}/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
[ policy_any ]
commonName = supplied
organizationName = optional
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ sub_ca_ext ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;
}

interface Signer {
  dir: string;
  conf: string;
  certFile: string;
  keyFile: string;
}

async function initSignerDir(dir: string): Promise<string> {
  await mkdir(join(dir, 'newcerts'), { recursive: true });
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'index.txt.attr'), 'unique_subject = no\n');
  await writeFile(join(dir, 'serial'), '1000\n');
  const conf = join(dir, 'openssl.cnf');
  await writeFile(conf, caConfig(dir));
  return conf;
}

interface SignRequest {
  signer: Signer;
  csr: string;
  out: string;
  extFile: string;
  extSection: string;
  expired: boolean;
  /** Sign with this key (self-signed) instead of the signer's. */
  selfKeyFile?: string;
}

async function sign(r: SignRequest): Promise<void> {
  const now = Date.now();
  const [start, end] = r.expired ? [now - 30 * DAY, now - DAY] : [now - DAY, now + 3650 * DAY];
  const args = [
    'ca', '-batch', '-notext', '-rand_serial', '-config', r.signer.conf,
    '-in', r.csr, '-out', r.out,
    '-extfile', r.extFile, '-extensions', r.extSection,
    '-startdate', asn1Time(new Date(start)), '-enddate', asn1Time(new Date(end)),
  ];
  if (r.selfKeyFile !== undefined) args.push('-selfsign', '-keyfile', r.selfKeyFile);
  else args.push('-cert', r.signer.certFile, '-keyfile', r.signer.keyFile);
  await runCommand('openssl', args);
}

async function csrFor(conf: string, keyFile: string, cn: string, out: string): Promise<void> {
  await runCommand('openssl', ['req', '-new', '-config', conf, '-key', keyFile, '-subj', `/O=portier test/CN=${cn}`, '-out', out]);
}

/** A test root CA in `dir` (created if needed), issuing leaf certificates with the openssl CLI. */
export async function makeTestCa(dir: string): Promise<TestCa> {
  const rootDir = join(dir, 'root');
  const conf = await initSignerDir(rootDir);
  const root: Signer = { dir: rootDir, conf, certFile: join(dir, 'ca.pem'), keyFile: join(rootDir, 'ca.key') };
  await writeFile(root.keyFile, pem(await newKey('rsa')), { mode: 0o600 });
  await csrFor(conf, root.keyFile, 'portier test root CA', join(rootDir, 'ca.csr'));
  await sign({ signer: root, csr: join(rootDir, 'ca.csr'), out: root.certFile, extFile: conf, extSection: 'ca_ext', expired: false, selfKeyFile: root.keyFile });

  let intermediate: Promise<Signer> | undefined;
  const makeIntermediate = async (): Promise<Signer> => {
    const idir = join(dir, 'intermediate');
    const iconf = await initSignerDir(idir);
    const s: Signer = { dir: idir, conf: iconf, certFile: join(idir, 'intermediate.pem'), keyFile: join(idir, 'intermediate.key') };
    await writeFile(s.keyFile, pem(await newKey('rsa')), { mode: 0o600 });
    await csrFor(iconf, s.keyFile, 'portier test intermediate CA', join(idir, 'intermediate.csr'));
    await sign({ signer: root, csr: join(idir, 'intermediate.csr'), out: s.certFile, extFile: conf, extSection: 'sub_ca_ext', expired: false });
    return s;
  };

  // `openssl ca` rewrites index.txt: one signing at a time per CA.
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };
  const used = new Set<string>();

  const issue = async (name: string, opts: IssueOptions = {}): Promise<IssuedCert> => {
    let base = safeName(name);
    for (let i = 2; used.has(base); i++) base = `${safeName(name)}-${i}`;
    used.add(base);
    const keyType = opts.keyType ?? 'rsa';
    const key = await newKey(keyType);
    const plainKey = join(dir, `${base}.plain.key`);
    const keyFile = join(dir, `${base}.key`);
    const certFile = join(dir, `${base}.pem`);
    const chainFile = join(dir, `${base}.chain.pem`);
    const csr = join(dir, `${base}.csr`);
    const extFile = join(dir, `${base}.ext`);
    await writeFile(plainKey, pem(key), { mode: 0o600 });
    if (opts.keyPassword !== undefined) await writeFile(keyFile, pem(key, opts.keyPassword), { mode: 0o600 });
    else await writeFile(keyFile, pem(key), { mode: 0o600 });
    const sans = (opts.sans ?? [name]).map((s) => (isIP(s) !== 0 ? `IP:${s}` : `DNS:${s}`));
    const usage = keyType === 'rsa' ? 'digitalSignature,keyEncipherment' : 'digitalSignature';
    await writeFile(
      extFile,
      `[ leaf ]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,${usage}\n` +
        `extendedKeyUsage = serverAuth,clientAuth\nsubjectKeyIdentifier = hash\n` +
        (opts.selfSigned === true ? '' : 'authorityKeyIdentifier = keyid\n') +
        (sans.length > 0 ? `subjectAltName = ${sans.join(',')}\n` : ''),
    );
    const useIntermediate = opts.intermediate === true && opts.selfSigned !== true;
    const signer = useIntermediate ? await (intermediate ??= serially(makeIntermediate)) : root;
    await csrFor(signer.conf, plainKey, name, csr);
    await serially(() =>
      sign({
        signer, csr, out: certFile, extFile, extSection: 'leaf', expired: opts.expired === true,
        ...(opts.selfSigned === true ? { selfKeyFile: plainKey } : {}),
      }),
    );
    const leafPem = await readFile(certFile, 'utf8');
    const chain = useIntermediate ? leafPem + (await readFile(signer.certFile, 'utf8')) : leafPem;
    await writeFile(chainFile, chain);
    return { name, certFile, keyFile, chainFile, caFile: root.certFile };
  };

  return { dir, caFile: root.certFile, caKeyFile: root.keyFile, issue };
}

let shared: Promise<TestCa> | undefined;

/** One CA per process (vitest runs each test file in its own process), in a temp dir. */
export function sharedTestCa(): Promise<TestCa> {
  shared ??= makeTempDir('portier-ca-').then((d) => makeTestCa(d));
  return shared;
}
