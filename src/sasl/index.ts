/** SASL for IMAP AUTHENTICATE, POP3 AUTH and upstream logins: step machines without a wire. */
export { decodeSaslBase64, encodeSaslBase64 } from './base64.js';
export { CLIENT_MECHANISMS, createClientMech, type ClientMechName, type SaslClientCredentials } from './client.js';
export { verifyCramMd5, type CramMd5Credentials, type CramMd5Secret } from './cram-md5.js';
export {
  createServerMech,
  isPlaintextMech,
  isServerMech,
  listServerMechs,
  SERVER_MECHANISMS,
  type MechListOptions,
} from './registry.js';
export {
  MAX_SASL_RESPONSE_BYTES,
  SaslClientError,
  type SaslClientMech,
  type SaslCredentials,
  type SaslServerContext,
  type SaslServerMech,
  type SaslStep,
} from './types.js';
