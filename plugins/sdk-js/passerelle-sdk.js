/**
 * The passerelle connector SDK for JavaScript (componentize-js, contract 0.1.3): what
 * the Rust SDK gives Rust connectors, helper for helper (`plugins/sdk/SPEC.md` names
 * each in the three languages; the parity test holds them to the same answers).
 *
 * - `Failure` (thrown anywhere) ends the run with a `sync-error`; `connector({...})`
 *   turns it, and any other exception (`internal`), into the export's error result.
 * - `get(url)` / `post(url)`: a request builder naming the endpoint; `.send()` maps
 *   statuses the host's way; `.json()` returns a `Reader`.
 * - `Reader`: JSON read field by field; a wrong shape is `schema-drift` with the
 *   endpoint and the JSON path (`$.items[0].startDateTime`), never the value.
 * - `emit`: records and checkpoints; `log`: logging through the host.
 * - `Timestamp`, `Window`: RFC 3339 timestamps (offset kept) and the sync window;
 *   `zone(name)`: the time zones of France and its neighbours (the rules written here,
 *   no zone database inside a component), for local times (`Timestamp.local`), local
 *   days (`Window.days`, `today`).
 *
 * @module passerelle-sdk
 */

import { send, sendTemplated } from 'passerelle:connector/http@0.1.3';
import * as records from 'passerelle:connector/records@0.1.3';
import { log as hostLog } from 'passerelle:connector/log@0.1.3';
import { now as hostNow } from 'passerelle:connector/clock@0.1.3';

/** A run's end: `error` is a WIT `sync-error` (`{tag, val}`). */
export class Failure extends Error {
  /** @param {{tag: string, val?: any}} error */
  constructor(error) {
    super(error.tag);
    this.error = error;
  }
  static unauthorized(why) { return new Failure({ tag: 'unauthorized', val: why }); }
  static rateLimited(secs) { return new Failure({ tag: 'rate-limited', val: secs }); }
  static unavailable(why) { return new Failure({ tag: 'unavailable', val: why }); }
  static invalidConfig(why) { return new Failure({ tag: 'invalid-config', val: why }); }
  static internal(why) { return new Failure({ tag: 'internal', val: why }); }
  /** A `schema-drift`: `found` names the JSON kind seen, never the value. */
  static drift(endpoint, path, expected, found) {
    return new Failure({ tag: 'schema-drift', val: { endpoint, path, expected, found } });
  }
}

function guard(call) {
  try {
    return call();
  } catch (e) {
    if (e instanceof Failure) throw e.error;
    // A bug in the connector: internal, with its kind, not its message.
    throw { tag: 'internal', val: `${e && e.name ? e.name : 'exception'} in the connector` };
  }
}

/**
 * The component's exports from `{describe, check, sync}`, failures turned into the
 * `sync-error` result.
 */
export function connector(impl) {
  return {
    describe: () => impl.describe(),
    check: (account) => guard(() => impl.check(account)),
    sync: (request) => guard(() => impl.sync(request)),
  };
}

/** The value of an optional setting of `account`, or undefined. */
export function settingOpt(account, key) {
  const found = account.settings.find((s) => s.key === key);
  return found ? found.value : undefined;
}

/** The value of a required setting, or `invalid-config` naming it. */
export function setting(account, key) {
  const value = settingOpt(account, key);
  if (value === undefined) throw Failure.invalidConfig(`setting \`${key}\` is required`);
  return value;
}

/** Whether the account has a secret of this name configured. */
export function hasSecret(account, name) { return account.secrets.includes(name); }

/** Logging through the host: ids and counts, never patient data. */
export const log = {
  write(level, message, fields = {}) {
    hostLog(level, message, Object.entries(fields).map(([k, v]) => [k, String(v)]));
  },
  debug(message, fields) { log.write('debug', message, fields); },
  info(message, fields) { log.write('info', message, fields); },
  warn(message, fields) { log.write('warn', message, fields); },
  error(message, fields) { log.write('error', message, fields); },
};

const MISSING = Symbol('missing');

/** The JSON kind of a value, as drift reports name it. */
export function kind(value) {
  if (value === MISSING) return 'missing';
  if (value === null) return 'null';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  if (typeof value === 'string') return 'string';
  if (Array.isArray(value)) return 'array';
  return 'object';
}

function join(base, key) {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return `${base}.${key}`;
  return `${base}['${key.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}']`;
}

/** Zones on Central European time (+01:00, summer +02:00) and Western (+00:00 / +01:00). */
const CET = ['Europe/Paris', 'Europe/Brussels', 'Europe/Luxembourg', 'Europe/Monaco',
  'Europe/Berlin', 'Europe/Madrid', 'Europe/Rome', 'Europe/Amsterdam', 'Europe/Zurich'];
const WET = ['Europe/London', 'Europe/Lisbon', 'Atlantic/Canary'];
/** Zones without summer time: minutes east of UTC. */
const FIXED = {
  'UTC': 0, 'Etc/UTC': 0, 'Indian/Reunion': 240, 'Indian/Mayotte': 180,
  'America/Guadeloupe': -240, 'America/Martinique': -240, 'America/Cayenne': -180,
  'America/St_Barthelemy': -240, 'America/Marigot': -240,
  'Pacific/Noumea': 660, 'Pacific/Tahiti': -600, 'Pacific/Wallis': 720,
};

/** 01:00 UTC on the last Sunday of `month` (1-12) of `year`, in milliseconds. */
function lastSunday(year, month) {
  const last = new Date(Date.UTC(year, month, 0));
  return Date.UTC(year, month - 1, last.getUTCDate() - last.getUTCDay(), 1);
}

/**
 * A time zone: its standard offset (minutes east of UTC) and whether it keeps European
 * summer time (last Sunday of March to last Sunday of October, 01:00 UTC).
 */
export class Zone {
  constructor(name, standard, summer) { this.name = name; this.standard = standard; this.summer = summer; }
  /** Minutes east of UTC at the instant `millis`. */
  offsetAt(millis) {
    if (!this.summer) return this.standard;
    const year = new Date(millis).getUTCFullYear();
    return this.standard + (millis >= lastSunday(year, 3) && millis < lastSunday(year, 10) ? 60 : 0);
  }
}

/**
 * The zone named `name` (`Europe/Paris`); one the SDK does not know is a bug in the
 * connector (`internal`), naming the ones it knows.
 */
export function zone(name) {
  if (name instanceof Zone) return name;
  if (CET.includes(name)) return new Zone(name, 60, true);
  if (WET.includes(name)) return new Zone(name, 0, true);
  if (Object.prototype.hasOwnProperty.call(FIXED, name)) return new Zone(name, FIXED[name], false);
  throw Failure.internal(`time zone \`${name}\` is not one the SDK knows: ${[...CET, ...WET, ...Object.keys(FIXED)].join(', ')}`);
}

const pad2 = (n) => String(n).padStart(2, '0');
/** `YYYY-MM-DD` of a UTC day count's date. */
const isoDate = (millis) => new Date(millis).toISOString().slice(0, 10);
const DAY = 86400000;

/** RFC 3339 timestamps: parsed with their offset kept. */
export class Timestamp {
  constructor(millis, offsetMinutes) {
    this.millis = millis;
    this.offsetMinutes = offsetMinutes;
  }

  /** @returns {Timestamp|null} null unless RFC 3339 with an offset. */
  static parse(text) {
    if (typeof text !== 'string') return null;
    const m = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.exec(text);
    if (!m) return null;
    const millis = Date.parse(text.toUpperCase());
    if (Number.isNaN(millis)) return null;
    let offset = 0;
    if (m[8] !== 'Z' && m[8] !== 'z') {
      const sign = m[8][0] === '-' ? -1 : 1;
      offset = sign * (Number(m[8].slice(1, 3)) * 60 + Number(m[8].slice(4, 6)));
    }
    return new Timestamp(millis, offset);
  }

  /** At its own offset: `2021-05-13T13:40:00+00:00` (milliseconds only when not 0). */
  toRfc3339() {
    const local = new Date(this.millis + this.offsetMinutes * 60000).toISOString();
    const ms = this.millis % 1000 === 0 ? '' : local.slice(19, 23);
    const sign = this.offsetMinutes < 0 ? '-' : '+';
    const abs = Math.abs(this.offsetMinutes);
    const pad = (n) => String(n).padStart(2, '0');
    return `${local.slice(0, 19)}${ms}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  }

  /** `2021-04-16T12:00:00.000Z`. */
  toUtcMillis() { return new Date(this.millis).toISOString(); }

  /** Milliseconds since the Unix epoch. */
  timestampMillis() { return this.millis; }

  /** The same instant shown `minutes` east of UTC; null beyond ±24 h. */
  atOffsetMinutes(minutes) {
    return Math.abs(minutes) < 24 * 60 ? new Timestamp(this.millis, minutes) : null;
  }

  /** The calendar date (`YYYY-MM-DD`) at this instant in `tz`. */
  dateIn(tz) { return isoDate(this.millis + zone(tz).offsetAt(this.millis) * 60000); }

  /**
   * A local time (`HH:MM`) of `date` (`YYYY-MM-DD`) in `tz`, with that zone's offset
   * then; null for a time the spring-forward gap skips. In the autumn's repeated hour,
   * the first.
   */
  static local(date, time, tz) {
    const z = zone(tz);
    const [y, mo, d] = date.split('-').map(Number);
    const [h, mi, sec = 0] = time.split(':').map(Number);
    const wall = Date.UTC(y, mo - 1, d, h, mi, sec);
    const offsets = z.summer ? [z.standard + 60, z.standard] : [z.standard];
    for (const offset of offsets) {
      const millis = wall - offset * 60000;
      if (z.offsetAt(millis) === offset) return new Timestamp(millis, offset);
    }
    return null;
  }

  /** Local midnight of `date` in `tz` (01:00 where a gap skips midnight). */
  static midnight(date, tz) {
    return Timestamp.local(date, '00:00', tz) || Timestamp.local(date, '01:00', tz);
  }
}

/** A sync request's window. */
export class Window {
  constructor(start, end) { this.start = start; this.end = end; }
  static parse(window) {
    const start = Timestamp.parse(window.start);
    const end = Timestamp.parse(window.end);
    if (!start || !end) throw Failure.internal('the host sent a window that is not RFC 3339');
    return new Window(start, end);
  }
  contains(t) { return this.start.millis <= t.millis && t.millis < this.end.millis; }

  /**
   * The part asked for availability: from the run's clock (`now()`) to the end. Slots
   * before now are not bookable; the window's past is for appointments.
   * @param {Timestamp|null} [at] the instant (default: the run's clock)
   */
  fromNow(at = now()) {
    if (!at || at.millis <= this.start.millis) return this;
    return new Window(at.millis < this.end.millis ? at : this.end, this.end);
  }

  /**
   * The window's local days in `tz` in pages of `days` days: `[first, last]` dates
   * (`YYYY-MM-DD`) inclusive, from the start's date to the date of the end's last
   * instant (an end at midnight does not add its day), the last page cut there.
   */
  days(days, tz) {
    const n = Math.max(1, days);
    const first = Date.parse(this.start.dateIn(tz));
    const last = Date.parse(new Timestamp(this.end.millis - 1, 0).dateIn(tz));
    const pages = [];
    for (let from = first; from <= last;) {
      const to = Math.min(from + (n - 1) * DAY, last);
      pages.push([isoDate(from), isoDate(to)]);
      from = to + DAY;
    }
    return pages;
  }
}

/** The run's date (`YYYY-MM-DD`) in `tz`, or null without a run clock. */
export function today(tz) {
  const at = now();
  return at ? at.dateIn(tz) : null;
}

/**
 * The run's "now" (contract 0.1.3): the real time in a daemon, the cassette's recorded
 * instant in `passerelle connector test`.
 * @returns {Timestamp}
 */
export function now() { return Timestamp.parse(hostNow()); }

/** A value of a JSON answer and where it is. */
export class Reader {
  constructor(endpoint, value, path = '$') {
    this.endpoint = endpoint;
    this.value = value;
    this.path = path;
  }
  drift(expected) { return Failure.drift(this.endpoint, this.path, expected, kind(this.value)); }
  get(key) {
    if (this.value === null || typeof this.value !== 'object' || Array.isArray(this.value) || this.value === MISSING) {
      throw this.drift('an object');
    }
    const v = Object.prototype.hasOwnProperty.call(this.value, key) ? this.value[key] : MISSING;
    return new Reader(this.endpoint, v, join(this.path, key));
  }
  present() { return this.value !== MISSING && this.value !== null; }
  items() {
    if (!Array.isArray(this.value)) throw this.drift('an array');
    return this.value.map((v, i) => new Reader(this.endpoint, v, `${this.path}[${i}]`));
  }
  str() {
    if (typeof this.value !== 'string') throw this.drift('a string');
    return this.value;
  }
  int() {
    if (typeof this.value !== 'number' || !Number.isInteger(this.value)) throw this.drift('an integer');
    return this.value;
  }
  bool() {
    if (typeof this.value !== 'boolean') throw this.drift('a boolean');
    return this.value;
  }
  timestamp() {
    const t = Timestamp.parse(this.value);
    if (!t) throw this.drift('an RFC 3339 date-time with an offset');
    return t;
  }
  optStr() { return this.present() ? this.str() : undefined; }

  /**
   * A field that must be present but may be null: null for null, this reader for a
   * value, `schema-drift` (found `missing`) when absent.
   */
  nullable() {
    if (this.value === MISSING) throw this.drift('a value or null');
    return this.value === null ? null : this;
  }

  /**
   * A list whose items come in several shapes, told apart by their members
   * (`[['slot', ['start', 'end']], ['trailer', ['total']]]`): each item as
   * `[shapeName, reader]`, the first shape whose members it all has. An item of no
   * shape is `schema-drift` at its path, expecting the shapes by name.
   */
  union(shapes) {
    return this.items().map((item) => {
      const v = item.value;
      const found = shapes.find(([, members]) => v !== null && typeof v === 'object' && !Array.isArray(v)
        && members.every((m) => Object.prototype.hasOwnProperty.call(v, m)));
      if (!found) {
        throw item.drift(`one of: ${shapes.map(([name, members]) => `${name} (${members.join(', ')})`).join(', ')}`);
      }
      return [found[0], item];
    });
  }
}

/** The answer's JSON at `$`; a body that is not JSON is drift at `$`. */
export function parse(endpoint, body) {
  let value;
  try {
    value = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw Failure.drift(endpoint, '$', 'a JSON document', 'not JSON');
  }
  return new Reader(endpoint, value);
}

/**
 * A 429 whose Retry-After is at most this is retried within the run (the host holds
 * the platform's next request until then); a longer one ends the run `rate-limited`.
 */
export const RETRY_WITHIN_RUN_SECS = 30;
/** How many 429s one request retries before giving up. */
export const RATE_LIMIT_RETRIES = 3;

/** Percent-encodes a query-string component (RFC 3986: only `A-Za-z0-9-_.~` stay). */
export function encode(component) {
  return Array.from(new TextEncoder().encode(String(component)), (b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9\-_.~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}

function header(response, name) {
  const found = response.headers.find(([n]) => n.toLowerCase() === name);
  return found ? found[1] : undefined;
}

function retryAfter(response) {
  const v = header(response, 'retry-after');
  const n = v === undefined ? NaN : Number.parseInt(v.trim(), 10);
  return Number.isNaN(n) ? undefined : n;
}

/** The failure a non-2xx status stands for, if any. */
export function statusError(endpoint, response) {
  const s = response.status;
  if (s >= 200 && s < 300) return null;
  if (s === 401 || s === 403) return Failure.unauthorized(`${endpoint}: HTTP ${s}`);
  if (s === 429) return Failure.rateLimited(retryAfter(response));
  if (s === 404) return Failure.invalidConfig(`${endpoint}: HTTP 404 (check the settings)`);
  if (s >= 500 && s < 600) return Failure.unavailable(`${endpoint}: HTTP ${s}`);
  return Failure.internal(`${endpoint}: unexpected HTTP ${s}`);
}

function transport(endpoint, e) {
  switch (e && e.tag) {
    case 'denied': return Failure.invalidConfig(`${endpoint}: denied: ${e.val}`);
    case 'invalid-request': return Failure.internal(`${endpoint}: invalid request: ${e.val}`);
    case 'timeout': return Failure.unavailable(`${endpoint}: timed out`);
    case 'too-large': return Failure.unavailable(`${endpoint}: response larger than ${e.val} bytes`);
    default: return Failure.unavailable(`${endpoint}: ${e && e.val}`);
  }
}

/** An HTTP request; secrets by reference only (the host substitutes them). */
export class Request {
  constructor(method, url) {
    this.method = method;
    this.url = url;
    this.queryPairs = [];
    this.headers = [{ name: 'accept', value: { tag: 'text', val: 'application/json' } }];
    this.templated = [];
    this.body = undefined;
    this.ownTimeoutMs = undefined;
    this.name = undefined;
  }
  /** The endpoint's name in drift reports and errors (`GET /api/x/{id}`). */
  endpoint(name) { this.name = name; return this; }
  query(key, value) { this.queryPairs.push([key, String(value)]); return this; }
  header(name, value) { this.headers.push({ name, value: { tag: 'text', val: value } }); return this; }
  secretHeader(name, secret) { this.headers.push({ name, value: { tag: 'secret', val: secret } }); return this; }
  /** `Authorization: Bearer <secret>`. */
  bearer(secret) { return this.secretPrefix('authorization', 'Bearer ', secret); }
  /** A header whose value is literal `prefix` then the account's secret. */
  secretPrefix(name, prefix, secret) {
    this.headers.push({ name, value: { tag: 'secret-with-prefix', val: { prefix, name: secret } } });
    return this;
  }
  /**
   * A header whose value is the account's secret inside literal text:
   * `secretTemplate('authorization', 'Platform apikey="', 'api-key', '"')`.
   */
  secretTemplate(header, before, secret, after) {
    this.templated.push({ header, before, secret, after });
    return this;
  }
  jsonBody(value) {
    this.body = new TextEncoder().encode(JSON.stringify(value));
    return this.header('content-type', 'application/json');
  }
  /** This request's own timeout (at most the host's). */
  timeoutMs(ms) { this.ownTimeoutMs = ms; return this; }
  /** The URL with its query string, as it will be sent. */
  fullUrl() {
    if (!this.queryPairs.length) return this.url;
    const q = this.queryPairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&');
    return `${this.url}${this.url.includes('?') ? '&' : '?'}${q}`;
  }
  endpointName() {
    if (this.name) return this.name;
    const rest = this.url.split('://').pop();
    const i = rest.indexOf('/');
    const path = (i < 0 ? '/' : rest.slice(i)).split(/[?#]/)[0];
    return `${this.method.toUpperCase()} ${path}`;
  }
  /** Sends it; any status but 2xx throws the matching `Failure`. */
  send() {
    const endpoint = this.endpointName();
    const request = { method: this.method, url: this.fullUrl(), headers: this.headers, body: this.body, timeoutMs: this.ownTimeoutMs };
    for (let retries = 0; ; retries++) {
      let response;
      try {
        response = this.templated.length ? sendTemplated(request, this.templated) : send(request);
      } catch (e) {
        throw transport(endpoint, e && e.payload !== undefined ? e.payload : e);
      }
      const after = retryAfter(response);
      if (response.status === 429 && retries < RATE_LIMIT_RETRIES && (after === undefined || after <= RETRY_WITHIN_RUN_SECS)) {
        log.info('rate-limited by the platform; retrying after its delay', { endpoint, retry_after_s: after ?? 1 });
        continue;
      }
      const failure = statusError(endpoint, response);
      if (failure) throw failure;
      return response;
    }
  }
  /** Sends it and reads the 2xx JSON body. */
  json() { return parse(this.endpointName(), this.send().body); }
}

export const get = (url) => new Request('get', url);
export const post = (url) => new Request('post', url);

function refused(what, f) {
  try {
    return f();
  } catch (e) {
    throw Failure.internal(`${what} refused: ${e && e.payload !== undefined ? e.payload : e}`);
  }
}

/** Records and checkpoints; a host refusal ends the run `internal`. */
export const emit = {
  slot(externalId, startsAt, { endsAt, practitioner, visitMotive, place } = {}) {
    return { externalId, startsAt, endsAt, practitioner, visitMotive, place };
  },
  slots(items) { if (items.length) refused('upsert-slots', () => records.upsertSlots(items)); },
  appointments(items) { if (items.length) refused('upsert-appointments', () => records.upsertAppointments(items)); },
  deletedAppointments(ids) { if (ids.length) refused('delete-appointments', () => records.deleteAppointments(ids)); },
  /** Commits what was emitted so far with `cursor`, in one transaction. */
  checkpoint(cursor) { refused('checkpoint', () => records.checkpoint(cursor)); },
  /** The operator's policy for an item that does not parse: `fail` or `quarantine`. */
  driftPolicy() { return records.onDrift(); },
  /**
   * Sets `item` (its JSON value) aside for the operator's review with the drift that
   * made it unreadable (a `schema-drift` `Failure`); kept by the host, never logged.
   */
  quarantine(failure, item) {
    refused('quarantine', () => records.quarantine({ drift: failure.error.val, item: JSON.stringify(item) }));
  },
  /**
   * `read(item)` for each item of the list at `reader`; an item it finds drifted is
   * quarantined under the operator's `quarantine` policy (and skipped), or ends the run
   * under `fail` (the default).
   */
  items(reader, read) {
    const out = [];
    let policy;
    for (const item of reader.items()) {
      try {
        out.push(read(item));
      } catch (e) {
        if (!(e instanceof Failure) || e.error.tag !== 'schema-drift') throw e;
        policy = policy ?? emit.driftPolicy();
        if (policy !== 'quarantine') throw e;
        emit.quarantine(e, item.value);
      }
    }
    return out;
  },
};
