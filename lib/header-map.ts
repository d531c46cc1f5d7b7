/**
 * A Fetch `Headers` for headers the process builds itself on a hot path (a
 * gateway's reply and upstream metadata, a gRPC client's request and
 * response headers): the same API and semantics — case-insensitive names,
 * `append` joining values with ", ", iteration sorted by name, `set-cookie`
 * kept as separate values — without undici's WebIDL conversions, which cost
 * ~7 % of the gateway's CPU per request (bench/README.md, Gateway).
 *
 * Values are not checked here: Node's HTTP/1.1 and HTTP/2 writers refuse a
 * name or value with invalid characters when the headers are sent, as they
 * would for any header object.
 */
export class HeaderMap implements Headers {
  readonly #values = new Map<string, string>();
  #cookies: string[] | undefined;

  constructor(init?: HeadersInit | Record<string, string>) {
    if (init === undefined) return;
    if (init instanceof HeaderMap || init instanceof Headers) init.forEach((v, k) => this.append(k, v));
    else if (Array.isArray(init) || Symbol.iterator in init) for (const [k, v] of init as Iterable<[string, string]>) this.append(k, v);
    else for (const k in init) this.append(k, (init as Record<string, string>)[k]!);
  }

  /**
   * A request's headers as Node parsed them (names already lower case), pseudo-headers left out; repeated
   * values are joined as Fetch joins them.
   */
  static fromIncoming(headers: Readonly<Record<string, string | string[] | undefined>>): HeaderMap {
    const out = new HeaderMap();
    for (const k in headers) {
      if (k.charCodeAt(0) === 58 /* ":" */) continue;
      const v = headers[k];
      if (typeof v === "string") {
        if (k === "set-cookie") out.append(k, v);
        else out.#values.set(k, v);
      } else if (v !== undefined) for (const one of v) out.append(k, one);
    }
    return out;
  }

  get(name: string): string | null {
    const key = name.toLowerCase();
    if (key === "set-cookie") return this.#cookies ? this.#cookies.join(", ") : null;
    return this.#values.get(key) ?? null;
  }

  has(name: string): boolean {
    const key = name.toLowerCase();
    return key === "set-cookie" ? this.#cookies !== undefined : this.#values.has(key);
  }

  set(name: string, value: string): void {
    const key = name.toLowerCase();
    const v = trim(value);
    if (key === "set-cookie") this.#cookies = [v];
    else this.#values.set(key, v);
  }

  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const v = trim(value);
    if (key === "set-cookie") (this.#cookies ??= []).push(v);
    else {
      const prev = this.#values.get(key);
      this.#values.set(key, prev === undefined ? v : `${prev}, ${v}`);
    }
  }

  delete(name: string): void {
    const key = name.toLowerCase();
    if (key === "set-cookie") this.#cookies = undefined;
    else this.#values.delete(key);
  }

  getSetCookie(): string[] {
    return this.#cookies ? [...this.#cookies] : [];
  }

  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    for (const k of this.#sortedNames()) {
      if (k === "set-cookie") for (const c of this.#cookies ?? []) callback.call(thisArg, c, k, this);
      else callback.call(thisArg, this.#values.get(k)!, k, this);
    }
  }

  *entries(): HeadersIterator<[string, string]> {
    for (const k of this.#sortedNames()) {
      if (k === "set-cookie") for (const c of this.#cookies ?? []) yield [k, c];
      else yield [k, this.#values.get(k)!];
    }
  }

  /**
   * The headers as Node's outgoing header object (`res.writeHead(status, headers)`), in insertion order:
   * each name once, `set-cookie` as its list of values.
   */
  toRecord(): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of this.#values) out[k] = v;
    if (this.#cookies) out["set-cookie"] = [...this.#cookies];
    return out;
  }

  #sortedNames(): string[] {
    const keys = [...this.#values.keys()];
    if (this.#cookies) keys.push("set-cookie");
    return keys.sort();
  }

  *keys(): HeadersIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): HeadersIterator<string> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): HeadersIterator<[string, string]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return "Headers";
  }
}

/** Fetch's value normalization: leading and trailing HTTP whitespace removed. */
function trim(value: string): string {
  const s = String(value);
  const first = s.charCodeAt(0);
  const last = s.charCodeAt(s.length - 1);
  return isHttpWhitespace(first) || isHttpWhitespace(last) ? s.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "") : s;
}

function isHttpWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}
