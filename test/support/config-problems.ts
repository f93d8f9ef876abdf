/** Configuration texts portier must refuse, for the configuration unit tests. */
import { expect } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

/** The problems parseConfig reports for `text` (read as `file`); the test fails when it is accepted. */
export function refusedConfig(text: string, file: string): string[] {
  try {
    parseConfig(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('expected the configuration to be refused');
}
