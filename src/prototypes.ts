/**
 * Keeps string methods fast in optimized code.
 *
 * V8 (11.3, Node 20) turns an object into dictionary mode when it becomes the prototype of a
 * new hidden class, and turns it fast again the first time an inline cache looks a property up
 * through it from an object. A method call on a primitive string is not such an object, so
 * after one `class X extends String` anywhere in the process (ioredis 6 has one, for RESP3
 * verbatim strings, and is loaded with the Redis passdb), String.prototype stays in dictionary
 * mode for good, and TurboFan compiles every `s.indexOf`, `s.slice`, `s.charCodeAt`, ... into a
 * generic property lookup: 2.4 times the time of a small parsing loop, for portier's code and
 * for Node's own. Looking a property up through wrapper objects (`new String('')`) in an inline
 * cache makes V8 turn those prototypes fast again. Harmless where nothing had slowed them.
 */
export function keepPrimitivePrototypesFast(): void {
  // Wrappers of every primitive whose methods are called on primitives (their prototypes are
  // reached only from primitives in normal code).
  const wrappers: object[] = [Object(''), Object(0), Object(false), Object(Symbol()), Object(0n)];
  // Enough calls for V8 to give `lookUp` a feedback vector (lazy feedback allocation), so its
  // inline cache runs and sees each wrapper.
  for (let i = 0; i < 64; i++) for (const w of wrappers) lookUp(w);
}

function lookUp(o: object): unknown {
  return (o as { valueOf: unknown }).valueOf;
}
