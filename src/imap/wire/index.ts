/** The IMAP wire layer: framers and encoder without sockets, shared by front-end and upstream. */
export * from './args.js';
export * from './command-reader.js';
export * from './encode.js';
export * from './limits.js';
export * from './response.js';
export * from './response-reader.js';
