/**
 * What happens in portier, published on node:diagnostics_channel. Metrics (and anything else
 * that wants to watch) subscribe; publishers pay nothing when nobody listens, and nothing
 * sits in the byte path.
 */
import { channel } from 'node:diagnostics_channel';
import type { ProxyFailureKind } from '../backend/failure.js';

export interface ConnectionEvent {
  readonly protocol: string;
  readonly listener: string;
}

export interface AuthEvent {
  readonly protocol: string;
  /** The AuthOutcome kind: proxy, failed, tempfail, disabled, referral, no-route. */
  readonly result: string;
}

export interface ProxyEvent {
  readonly protocol: string;
  readonly backend: string;
  readonly ok: boolean;
  readonly failure?: ProxyFailureKind | undefined;
  readonly seconds: number;
}

export interface SessionEndEvent {
  readonly protocol: string;
  readonly reason: string;
  readonly spliced: boolean;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly seconds: number;
}

export const events = {
  connection: channel('portier:connection'),
  auth: channel('portier:auth'),
  proxy: channel('portier:proxy'),
  sessionEnd: channel('portier:session-end'),
} as const;

export function publishConnection(e: ConnectionEvent): void {
  if (events.connection.hasSubscribers) events.connection.publish(e);
}

export function publishAuth(e: AuthEvent): void {
  if (events.auth.hasSubscribers) events.auth.publish(e);
}

export function publishProxy(e: ProxyEvent): void {
  if (events.proxy.hasSubscribers) events.proxy.publish(e);
}

export function publishSessionEnd(e: SessionEndEvent): void {
  if (events.sessionEnd.hasSubscribers) events.sessionEnd.publish(e);
}
