/**
 * IMAP AUTHENTICATE (RFC 9051 §6.2.2, SASL-IR RFC 4959): the base64 layer and continuation
 * lines around the protocol-neutral SASL step machines in sasl/. `*` cancels.
 */
import { saslLogin } from '../login/auth.js';
import type { ClientSession } from '../login/session.js';
import { createServerMech, decodeSaslBase64, encodeSaslBase64, type SaslStep } from '../sasl/index.js';
import { externalUser } from '../tls/client-cert.js';
import { authPolicy } from './capability.js';
import { login, type CommandContext } from './commands.js';
import { REPLY } from './replies.js';
import { asAString, asAtom } from './wire/args.js';
import type { ImapCommand } from './wire/command-reader.js';
import { asciiUpper } from '../wire/ascii.js';

/**
 * SASL mechanisms portier can complete before proxying: those that yield a password, and
 * CRAM-MD5, checked against the passdb's stored credentials (the backend password then comes
 * from the passdb).
 */
const PROXYABLE: ReadonlyMap<string, { plaintext: boolean }> = new Map([
  ['PLAIN', { plaintext: true }],
  ['LOGIN', { plaintext: true }],
  ['CRAM-MD5', { plaintext: false }],
  // RFC 4422 App. A: the identity is the TLS client certificate's; offered only when one was verified.
  ['EXTERNAL', { plaintext: false }],
]);

/** auth_mechanisms ∩ what portier supports, in configured order. */
export function offeredMechanisms(session: ClientSession): { name: string; plaintext: boolean }[] {
  const out: { name: string; plaintext: boolean }[] = [];
  for (const m of session.runtime.config.auth_mechanisms) {
    const name = asciiUpper(m);
    const info = PROXYABLE.get(name);
    if (name === 'EXTERNAL' && externalUser(session) === undefined) continue;
    if (info !== undefined && !out.some((o) => o.name === name)) out.push({ name, ...info });
  }
  return out;
}

/** What a server mechanism may know of the connection: the host name, the certificate's user. */
export function saslContext(s: ClientSession): { hostname: string; tlsClientCertUser?: string } {
  const certUser = externalUser(s);
  return certUser === undefined ? { hostname: s.runtime.hostname } : { hostname: s.runtime.hostname, tlsClientCertUser: certUser };
}

export function authenticateCommand(ctx: CommandContext, cmd: ImapCommand): void {
  const [mechArg, irArg, ...extra] = cmd.args;
  const name = asAtom(mechArg);
  if (name === undefined || extra.length > 0) return ctx.bad(cmd.tag, 'Invalid arguments.');
  const s = ctx.session;
  const offered = offeredMechanisms(s).find((m) => m.name === name);
  if (offered === undefined) return ctx.reply(`${cmd.tag} ${REPLY.mechUnsupported}`);
  const policy = authPolicy(s);
  if (policy.tlsRequired) return ctx.reply(`${cmd.tag} ${REPLY.tlsRequired}`);
  if (offered.plaintext && !policy.plaintextAllowed) return ctx.reply(`${cmd.tag} ${REPLY.privacyRequired}`);
  let initial: Buffer | null = null;
  if (irArg !== undefined) {
    const ir = asAString(irArg);
    initial = ir === undefined ? null : decodeSaslBase64(ir.toString('latin1'));
    if (initial === null) return ctx.bad(cmd.tag, 'Invalid base64 in the initial response.');
  }
  const mech = createServerMech(name, saslContext(s));
  if (mech === undefined) return ctx.reply(`${cmd.tag} ${REPLY.mechUnsupported}`);
  s.state = 'authenticating';
  handleStep(ctx, cmd.tag, name, mech.start(initial), (resp) => mech.step(resp));
}

function handleStep(ctx: CommandContext, tag: string, mechName: string, step: SaslStep, next: (resp: Buffer) => SaslStep): void {
  const s = ctx.session;
  switch (step.kind) {
    case 'challenge':
      ctx.reply(`+ ${encodeSaslBase64(step.data)}`);
      ctx.awaitLine((line) => {
        const text = line.toString('latin1');
        if (text === '*') {
          s.state = 'pre-auth';
          ctx.reply(`${tag} ${REPLY.authAborted}`);
          return;
        }
        const resp = decodeSaslBase64(text);
        if (resp === null) {
          s.state = 'pre-auth';
          ctx.bad(tag, 'Invalid base64 in the SASL response.');
          return;
        }
        handleStep(ctx, tag, mechName, next(resp), next);
      });
      return;
    case 'fail':
      s.state = 'pre-auth';
      ctx.bad(tag, step.reason === 'malformed' ? 'Malformed SASL response.' : 'SASL protocol error.');
      return;
    case 'done': {
      const creds = saslLogin(mechName, step.credentials);
      if (creds === null) {
        s.state = 'pre-auth';
        ctx.reply(`${tag} ${REPLY.mechUnsupported}`);
        return;
      }
      login(ctx, tag, creds);
      return;
    }
  }
}
