/**
 * POP3 AUTH (RFC 5034): the base64 layer and `+ ` continuation lines around the
 * protocol-neutral SASL step machines in sasl/. An initial response may follow the mechanism
 * (`=` is an empty one); `*` cancels (§4). AUTH without arguments lists the mechanisms, as
 * Dovecot and many clients still expect from the older RFC 1734 form.
 */
import { offeredMechanisms, saslContext } from '../imap/sasl-step.js';
import { saslLogin } from '../login/auth.js';
import { createServerMech, decodeSaslBase64, encodeSaslBase64, type SaslStep } from '../sasl/index.js';
import { authPolicy, usableMechanisms } from './capability.js';
import { login, type Pop3Context } from './commands.js';
import { REPLY } from './replies.js';
import { splitArgs, type Pop3Command } from './wire.js';

export { offeredMechanisms };

export function authCommand(ctx: Pop3Context, cmd: Pop3Command): void {
  const s = ctx.session;
  const args = splitArgs(cmd.args);
  if (args.length === 0) {
    const mechs = usableMechanisms(s, offeredMechanisms(s));
    s.write(`${REPLY.authList}\r\n${mechs.map((m) => `${m}\r\n`).join('')}.\r\n`);
    return;
  }
  if (args.length > 2) return ctx.bad(REPLY.missingArgs);
  const [name = '', irText] = args;
  const mechName = name.toUpperCase();
  const offered = offeredMechanisms(s).find((m) => m.name === mechName);
  if (offered === undefined) return ctx.reply(REPLY.mechUnsupported);
  const policy = authPolicy(s);
  if (policy.tlsRequired) return ctx.reply(REPLY.tlsRequired);
  if (offered.plaintext && !policy.plaintextAllowed) return ctx.reply(REPLY.plaintextDisallowed);
  let initial: Buffer | null = null;
  if (irText !== undefined) {
    initial = decodeSaslBase64(irText);
    if (initial === null) return ctx.bad(REPLY.invalidBase64);
  }
  const mech = createServerMech(mechName, saslContext(s));
  if (mech === undefined) return ctx.reply(REPLY.mechUnsupported);
  // A USER given earlier does not carry over into an AUTH exchange.
  ctx.pendingUser = undefined;
  s.state = 'authenticating';
  handleStep(ctx, mechName, mech.start(initial), (resp) => mech.step(resp));
}

function handleStep(ctx: Pop3Context, mechName: string, step: SaslStep, next: (resp: Buffer) => SaslStep): void {
  const s = ctx.session;
  switch (step.kind) {
    case 'challenge':
      ctx.reply(`+ ${encodeSaslBase64(step.data)}`);
      ctx.awaitLine((line) => {
        const text = line.toString('latin1');
        if (text === '*') {
          s.state = 'pre-auth';
          ctx.reply(REPLY.authAborted);
          return;
        }
        const resp = decodeSaslBase64(text);
        if (resp === null) {
          s.state = 'pre-auth';
          ctx.bad(REPLY.invalidBase64);
          return;
        }
        handleStep(ctx, mechName, next(resp), next);
      });
      return;
    case 'fail':
      s.state = 'pre-auth';
      ctx.bad(REPLY.saslMalformed);
      return;
    case 'done': {
      const creds = saslLogin(mechName, step.credentials);
      if (creds === null) {
        s.state = 'pre-auth';
        ctx.reply(REPLY.mechUnsupported);
        return;
      }
      login(ctx, creds);
      return;
    }
  }
}
