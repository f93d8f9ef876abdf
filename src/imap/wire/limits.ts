/**
 * Hard limits of the IMAP framers, as named constants (architecture pattern 7). Each one
 * bounds memory per connection before authentication; each has a test in
 * test/unit/imap/wire/.
 */

/**
 * Longest command line in bytes, excluding CRLF and literal payloads (all physical lines of
 * one command together). Dovecot imap-login's `MAX_IMAP_LINE` is the same 8192.
 */
export const IMAP_MAX_LINE_LENGTH = 8192;

/**
 * Most literal bytes one pre-auth command may carry, across all its literals. 8 KiB: pre-auth
 * literals only carry LOGIN credentials and ID values; Dovecot caps all LOGIN parameters at
 * 1026 bytes (`LOGIN_MAX_INBUF_SIZE`) and go-imap caps buffered literals at 4096, but long
 * bearer tokens sent as LOGIN passwords reach a few KiB. Line + literal stay ≤ 16 KiB.
 */
export const IMAP_PREAUTH_MAX_LITERAL_SIZE = 8192;

/** Longest accepted tag; longer ones are invalid and never echoed (Dovecot `IMAP_TAG_MAX_LEN`). */
export const IMAP_MAX_TAG_LENGTH = 126;

/**
 * Most arguments per command, counting list items at every depth and the lists themselves.
 * An ID with Dovecot's 30 parameters needs 61; more is refused as a syntax error.
 */
export const IMAP_PREAUTH_MAX_ARGS = 64;

/**
 * Deepest list nesting. Pre-auth only ID uses a list (one level; Dovecot's
 * `IMAP_LOGIN_LIST_COUNT_LIMIT`); 4 leaves room to parse unknown commands and answer them by
 * name, while excessive bracing (Dovecot CVE-2026-42006) stops early.
 */
export const IMAP_PREAUTH_MAX_LIST_DEPTH = 4;

/** RFC 7888 §4: LITERAL- allows non-synchronising literals only up to 4096 octets. */
export const IMAP_LITERAL_MINUS_MAX = 4096;

/** Longest backend response in bytes, literals and CRLFs included (upstream login only). */
export const IMAP_MAX_RESPONSE_SIZE = 65536;

/** Dovecot imap-login `client_update_info`: at most 30 ID parameters… */
export const IMAP_ID_MAX_PARAMS = 30;

/** …each key or value at most 1024 bytes. */
export const IMAP_ID_MAX_VALUE_LENGTH = 1024;

/** Longest accepted command name (no IMAP command comes close). */
export const IMAP_MAX_COMMAND_NAME_LENGTH = 64;
